"""Benchmark face detectors on the photos in shared/data/photos.

For each detector: recall on CMU+MIT (511 labelled faces; a hit is a detection whose box
contains a labelled box's centre, each labelled face and each detection matched at most
once), false faces on CMU+MIT and on the 274 no-faces scenes, and the median time per photo
on one core: over CMU+MIT + no-faces as they are, and over the people photos fitted to
640x480. dlib's HOG detector runs in the same process as the yardstick.

Then recall on faces cut by the frame and on very large faces (--edges): crops of the
people photos around each face the detector finds there whole (score >= 0.99, at least
60 px), with the frame's edge cutting 25% or 50% of the face off on each side in turn, or
the face filling 90% of a square frame or overflowing it (frame 0.8x the face), fitted
to 640 px. A hit is a detection holding the centre of the face's part inside the crop.
"before" is our MTCNN with black beyond the image's edges, as the reference has it.

    .venv/bin/python bench/faces.py              # everything, a few minutes on one core
    .venv/bin/python bench/faces.py --limit 30   # a quick look

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import agedetect.faces
from agedetect.faces import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_THRESHOLD,
    detect_faces,
)
from agedetect.evaluate import Box, match_detections, read_labelled_boxes
from agedetect.images import load_image

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"
#: Reported in the issue for the PyPI `mtcnn` (TensorFlow) package, not measured here.
PYPI_MTCNN_REPORTED = (
    "PyPI mtcnn (TensorFlow), reported in the issue: 86.5% recall, "
    "28 false faces on no-faces, 170 ms"
)

Detector = Callable[[np.ndarray], list[tuple[Box, float]]]


@dataclass
class Result:
    name: str
    hits: int = 0
    labelled: int = 0
    false_cmu: int = 0
    false_nofaces: int = 0
    cpu: list[float] = field(default_factory=list)  # CMU+MIT and no-faces, as they are
    cpu_640: list[float] = field(default_factory=list)  # people photos fitted to 640x480
    wall_640: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.hits / self.labelled if self.labelled else float("nan")


def mtcnn_detector(**options: object) -> Detector:
    def run(rgb: np.ndarray) -> list[tuple[Box, float]]:
        return [(f.box, f.score) for f in detect_faces(rgb, **options)]  # type: ignore[arg-type]

    return run


def mtcnn_before_edges() -> Detector:
    """Our MTCNN as it was before faces cut by the frame were looked for: black beyond the
    image's edges and no border around PNet's pyramid levels."""
    def run(rgb: np.ndarray) -> list[tuple[Box, float]]:
        saved = agedetect.faces._MIRROR_EDGES, agedetect.faces._PNET_EDGE_PAD
        agedetect.faces._MIRROR_EDGES, agedetect.faces._PNET_EDGE_PAD = False, 0
        try:
            return [(f.box, f.score) for f in detect_faces(rgb)]
        finally:
            agedetect.faces._MIRROR_EDGES, agedetect.faces._PNET_EDGE_PAD = saved

    return run


def edge_crops(people: list[Path], limit: int | None) -> dict[str, list[tuple[np.ndarray, Box]]]:
    """Crops of the people photos where the frame cuts a face or the face fills the frame:
    ``{kind: [(crop, face box in the crop), ...]}`` (see the module docstring)."""
    kinds: dict[str, list[tuple[np.ndarray, Box]]] = {}
    for path in people[:limit] if limit else people:
        rgb = load_image(path)
        height, width = rgb.shape[:2]
        faces = [f for f in mtcnn_before_edges()(rgb) if f[1] >= 0.99 and f[0][2] - f[0][0] >= 60]
        for (x1, y1, x2, y2), _ in faces:
            w, h = x2 - x1, y2 - y1
            # A frame 3x the face around it, inside the photo, then one edge moved onto the face.
            frame = (max(0.0, x1 - w), max(0.0, y1 - h), min(width, x2 + w), min(height, y2 + h))
            for cut in (0.25, 0.5):
                for side in ("left", "right", "top", "bottom"):
                    fx1, fy1, fx2, fy2 = frame
                    if side == "left":
                        fx1 = x1 + cut * w
                    elif side == "right":
                        fx2 = x2 - cut * w
                    elif side == "top":
                        fy1 = y1 + cut * h
                    else:
                        fy2 = y2 - cut * h
                    kinds.setdefault(f"cut {cut:.0%}", []).append(_crop(rgb, (fx1, fy1, fx2, fy2), (x1, y1, x2, y2)))
            cx, cy, side_ = (x1 + x2) / 2, (y1 + y2) / 2, max(w, h)
            for name, fill in (("fills 90%", 1 / 0.9), ("overflows (0.8x)", 0.8)):
                half = side_ * fill / 2
                kinds.setdefault(name, []).append(
                    _crop(rgb, (cx - half, cy - half, cx + half, cy + half), (x1, y1, x2, y2), size=640))
    return kinds


def _crop(rgb: np.ndarray, frame: Box, face: Box, size: int | None = None) -> tuple[np.ndarray, Box]:
    """The frame cut from the photo (black beyond it), resized to ``size`` if given, and the
    face's box in the crop's pixels."""
    fx1, fy1, fx2, fy2 = (round(v) for v in frame)
    picture = Image.fromarray(rgb).crop((fx1, fy1, fx2, fy2))
    scale = 1.0
    if size:
        scale = size / max(picture.size)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 Image.Resampling.BILINEAR)
    x1, y1, x2, y2 = face
    return np.asarray(picture), ((x1 - fx1) * scale, (y1 - fy1) * scale, (x2 - fx1) * scale, (y2 - fy1) * scale)


def edge_recall(detector: Detector, crops: dict[str, list[tuple[np.ndarray, Box]]]) -> dict[str, tuple[int, int]]:
    """``{kind: (hits, faces)}``: a hit is a detection holding the centre of the face's
    visible part."""
    out = {}
    for kind, items in crops.items():
        hits = 0
        for rgb, (x1, y1, x2, y2) in items:
            height, width = rgb.shape[:2]
            visible = (max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))
            hits += match_detections(detector(rgb), [visible])[0]
        out[kind] = (hits, len(items))
    return out


def dlib_detector(upsample: int) -> Detector:
    import dlib

    hog = dlib.get_frontal_face_detector()

    def run(rgb: np.ndarray) -> list[tuple[Box, float]]:
        rects, scores, _ = hog.run(rgb, upsample, 0.0)
        return [
            ((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)
        ]

    return run


def timed(
    detector: Detector, rgb: np.ndarray, repeat: int
) -> tuple[list[tuple[Box, float]], float, float]:
    """Detections, CPU seconds and wall seconds, each the best of ``repeat`` runs.

    CPU time of the whole process is the cost on one core (ONNX Runtime runs in the calling
    thread here; dlib is serial) and is little disturbed by other jobs on a shared machine;
    wall time is shown beside it for the 640x480 photos.
    """
    best_cpu = best_wall = math.inf
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        found = detector(rgb)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return found, best_cpu, best_wall


def fit_640x480(rgb: np.ndarray) -> np.ndarray:
    image = Image.fromarray(rgb)
    size = (640, 480) if image.width >= image.height else (480, 640)
    return np.asarray(ImageOps.fit(image, size, Image.Resampling.BILINEAR))


def evaluate(name: str, detector: Detector, photos: Path, limit: int | None, repeat: int) -> Result:
    truth = read_labelled_boxes(photos / "cmu-mit" / "ground_truth_bboxes.txt")
    cmu = sorted(p for p in (photos / "cmu-mit").iterdir() if p.suffix.lower() != ".txt")
    nofaces = sorted((photos / "no-faces").iterdir())
    people = sorted((photos / "people").iterdir())
    if limit:
        cmu, nofaces, people = cmu[:limit], nofaces[:limit], people[:limit]
    result = Result(name)
    detector(np.zeros((64, 64, 3), np.uint8))  # load models outside the timings
    for path in cmu:
        found, cpu, _ = timed(detector, load_image(path), repeat)
        labelled = truth.get(path.name, [])
        hits, false = match_detections(found, labelled)
        result.hits += hits
        result.labelled += len(labelled)
        result.false_cmu += false
        result.cpu.append(cpu)
    for path in nofaces:
        found, cpu, _ = timed(detector, load_image(path), repeat)
        result.false_nofaces += len(found)
        result.cpu.append(cpu)
    for path in people:
        _, cpu, wall = timed(detector, fit_640x480(load_image(path)), repeat)
        result.cpu_640.append(cpu)
        result.wall_640.append(wall)
    return result


def table(results: Iterable[Result], reference: Result | None) -> str:
    heads = [
        ("recall", "CMU+MIT"), ("hits", ""), ("false", "CMU+MIT"), ("false", "no-faces"),
        ("cpu ms", "per photo"), ("cpu ms", "640x480"), ("wall ms", "640x480"),
        ("640 time", "vs dlib"),
    ]
    lines = [
        f"{'detector (medians of times)' if row == 0 else '':<36} "
        + " ".join(f"{head[row]:>9}" for head in heads)
        for row in (0, 1)
    ]

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000 if values else float("nan")

    for r in results:
        ratio = ""
        if reference is not None and reference.cpu_640:
            ratio = f"{median_ms(r.cpu_640) / median_ms(reference.cpu_640):.2f}x"
        lines.append(
            f"{r.name:<36} {r.recall:>9.1%} {f'{r.hits}/{r.labelled}':>9} {r.false_cmu:>9} "
            f"{r.false_nofaces:>9} {median_ms(r.cpu):>9.1f} {median_ms(r.cpu_640):>9.1f} "
            f"{median_ms(r.wall_640):>9.1f} {ratio:>9}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="shared/data/photos folder")
    parser.add_argument("--limit", type=int, help="at most this many photos per folder")
    parser.add_argument("--repeat", type=int, default=2, help="time each photo N times; keep best")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib (upsampled, it is slow)")
    parser.add_argument("--edges", action="store_true", help="only recall on faces cut by the frame / very large")
    args = parser.parse_args(argv)
    if not (args.photos / "cmu-mit" / "ground_truth_bboxes.txt").is_file():
        print(f"{args.photos}: expected cmu-mit/, no-faces/ and people/ there", file=sys.stderr)
        return 2
    # One core for everyone: ONNX Runtime is set so in agedetect.faces; dlib HOG is serial.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load = os.getloadavg()[0]
    print(f"load average at start {load:.1f} on {os.cpu_count()} cores; "
          f"times are the best of {args.repeat} runs per photo")

    defaults = (
        f"min_face_size={DEFAULT_MIN_FACE_SIZE}, threshold={DEFAULT_THRESHOLD}, "
        f"max_side={DEFAULT_MAX_SIDE}"
    )
    if args.edges:
        crops = edge_crops(sorted((args.photos / "people").iterdir()), args.limit)
        print(f"{'faces cut by the frame / very large':<36} " + " ".join(f"{k:>16}" for k in crops))
        for name, detector in (("MTCNN-ONNX (ours), defaults", mtcnn_detector()),
                               ("MTCNN-ONNX before (black edges)", mtcnn_before_edges())):
            recall = edge_recall(detector, crops)
            print(f"{name:<36} " + " ".join(f"{f'{h / n:.1%} ({h}/{n})':>16}" for h, n in recall.values()))
        return 0

    candidates: list[tuple[str, Detector]] = [
        ("MTCNN-ONNX (ours), defaults", mtcnn_detector()),
        ("MTCNN-ONNX before (black edges)", mtcnn_before_edges()),
        ("MTCNN-ONNX threshold=0.7", mtcnn_detector(threshold=0.7)),
        ("MTCNN-ONNX min_face_size=20", mtcnn_detector(min_face_size=20)),
        ("MTCNN-ONNX min_face_size=40", mtcnn_detector(min_face_size=40)),
    ]
    if not args.no_dlib:
        candidates += [
            ("dlib HOG upsample=1 (finds >=40 px)", dlib_detector(1)),
            ("dlib HOG upsample=0 (finds >=80 px)", dlib_detector(0)),
        ]
    results = []
    for name, detector in candidates:
        started = time.perf_counter()
        results.append(evaluate(name, detector, args.photos, args.limit, max(1, args.repeat)))
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    reference = next((r for r in results if r.name.startswith("dlib HOG upsample=1")), None)
    print(f"Defaults: {defaults}")
    print(table(results, reference))
    print(f"(for comparison, {PYPI_MTCNN_REPORTED})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
