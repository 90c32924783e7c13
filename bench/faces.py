"""Benchmark face detectors on the photos in shared/data/photos.

For each detector: recall on CMU+MIT (511 labelled faces; a hit is a detection whose box
contains a labelled box's centre, each labelled face and each detection matched at most
once), false faces on CMU+MIT and on the 274 no-faces scenes, and the median time per photo
on one core: over CMU+MIT + no-faces as they are, and over the people photos fitted to
640x480. dlib's HOG detector runs in the same process as the yardstick.

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
    candidates: list[tuple[str, Detector]] = [
        ("MTCNN-ONNX (ours), defaults", mtcnn_detector()),
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
