"""Video: sampled frames per second, what fusing a person's frames buys, the live round trip.

Three parts (``--part``, default all):

- ``frames``: ``agedetect predict`` on two 20-second 640x480 clips (three people from the
  shared photos, slow pans and zooms, hard cuts; H.264) with ``--workers 1`` and
  ``--workers 2``: sampled frames per second over the whole command (process start and
  model load included), and per clip in-process with one ONNX Runtime thread.
- ``fusion``: for held-out faces (a prepared split, default test; a hash-chosen subset of
  ``--faces``), ``--frames`` frames of one face each, every frame jittered (shift, turn,
  scale), blurred and re-compressed as JPEG, through the full pipeline (detect, align,
  estimate); then each fusion of :func:`agedetect.ages.fuse_ages` against the first frame
  alone: MAE, and how often the 80% interval holds the true age. Such clips are a
  stand-in for real footage: the frames differ only by the noise added here, not by pose,
  expression or light as a real person's frames do.
- ``live``: ``agedetect serve`` on loopback, a client sending 640x480 JPEG frames over the
  live WebSocket one after another: time from a frame sent to its answer received.

    .venv/bin/python bench/video.py --data runs/utkface --split test

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the clip makers the tests use

from clips import THREE_PEOPLE, clip_frames, jpeg, shots, write_video  # noqa: E402

from agedetect.ages import fuse_ages  # noqa: E402
from agedetect.inference import AgeEstimator  # noqa: E402

AGEDETECT = str(Path(sys.executable).with_name("agedetect"))


# ---------------------------------------------------------------------- frames per second


def frames_part(seconds: float) -> dict:
    from agedetect.video import VideoOptions, analyse_video

    estimator = AgeEstimator(threads=1).load()
    folder = Path(tempfile.mkdtemp(prefix="agedetect-video-bench-"))
    shot_list = shots(estimator, THREE_PEOPLE, seconds / 3)
    clips = [write_video(folder / f"clip{i}.mp4", clip_frames(shot_list, 25), 25) for i in range(2)]
    result: dict = {"clip": f"{seconds:g} s, 640x480, 25 fps, H.264, sampled at 5 fps"}
    # Wall-clock figures depend on what else runs on the cores; CPU time less so: frames per
    # CPU-second is what one idle core would give.
    began, cpu = time.perf_counter(), time.process_time()
    analysis = analyse_video(clips[0], estimator, VideoOptions())
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    result["in_process_1_thread"] = {"frames": analysis.frames_sampled, "seconds": round(took, 2),
                                     "frames_per_s": round(analysis.frames_sampled / took, 1),
                                     "frames_per_cpu_s": round(analysis.frames_sampled / cpu, 1),
                                     "people": len(analysis.people)}
    for workers in (1, 2):
        began, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([AGEDETECT, "predict", *map(str, clips), "--workers", str(workers), "--format", "json"],
                             capture_output=True, text=True, check=True)
        took, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows = json.loads(out.stdout)
        frames = 2 * analysis.frames_sampled
        result[f"cli_{workers}_workers"] = {"frames": frames, "seconds": round(took, 2),
                                            "frames_per_s": round(frames / took, 1),
                                            "cpu_s": round(cpu, 1), "people": len(rows)}
    for clip in clips:
        clip.unlink()
    folder.rmdir()
    return result


# ---------------------------------------------------------------------- fusion


#: How hard each frame is degraded: (turn in degrees, shift in px, scale range, blur radius,
#: JPEG quality range, side the face is shrunk to before it is blown up again or None).
NOISE = {
    "mild": (6, 6, (0.92, 1.08), 1.5, (35, 85), None),
    "harsh": (15, 12, (0.8, 1.2), 3.0, (15, 60), (48, 96)),
}


def jittered(chip: Image.Image, rng: random.Random, noise: str = "mild") -> np.ndarray:
    """One frame of a face: shifted, turned, scaled, blurred and re-compressed (``harsh``
    also shrinks it to a small face, as far from the camera, and blows it up again)."""
    turn, shift, (small, large), blur, (worst, best), shrink = NOISE[noise]
    side = chip.width
    turned = chip.rotate(rng.uniform(-turn, turn), Image.Resampling.BILINEAR,
                         translate=(rng.uniform(-shift, shift), rng.uniform(-shift, shift)))
    if shrink is not None:
        tiny = rng.randint(*shrink)
        turned = turned.resize((tiny, tiny), Image.Resampling.BILINEAR).resize((side, side), Image.Resampling.BILINEAR)
    resized = turned.resize((round(side * rng.uniform(small, large)),) * 2, Image.Resampling.BILINEAR)
    blurred = resized.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, blur)))
    buffer = io.BytesIO()
    blurred.save(buffer, "JPEG", quality=rng.randint(worst, best))
    return np.asarray(Image.open(buffer).convert("RGB"))


def fusion_part(data: Path, split: str, faces: int, frames: int, seed: int, noise: str = "mild") -> dict:
    from agedetect.data import load_manifest

    estimator = AgeEstimator(threads=1).load()
    groups = estimator.groups
    rows = load_manifest(data, split)
    rows = sorted(rows, key=lambda r: hashlib.sha256(f"{seed}:{r.path.name}".encode()).hexdigest())[:faces]
    methods = {
        "first frame alone": None,
        "mean of distributions": ("mean", None),
        "median of estimates": ("median", None),
        "product, temperature = frames (geometric mean)": ("product", "n"),
        "product, temperature = sqrt(frames)": ("product", "sqrt"),
        "product, temperature = 1 (plain product)": ("product", 1.0),
    }
    errors = {name: [] for name in methods}
    covered = {name: [] for name in methods}
    widths = {name: [] for name in methods}
    skipped = 0
    began = time.perf_counter()
    for row in rows:
        rng = random.Random(f"{seed}:{row.path.name}")
        with Image.open(row.path) as opened:
            chip = opened.convert("RGB")
        distributions = []
        for _ in range(frames):
            found = estimator.predict_image(jittered(chip, rng, noise))
            if found:
                distributions.append(np.asarray(found[0].age_distribution))
        if len(distributions) < 2:
            skipped += 1
            continue
        probs = np.stack(distributions)
        for name, how in methods.items():
            if how is None:
                decoded = estimator.decode(probs[:1])[0]
                age, (low, high) = decoded.age, decoded.age_interval
            else:
                method, temperature = how
                t = {"n": None, "sqrt": float(np.sqrt(len(probs)))}.get(temperature, temperature)
                d, _ = fuse_ages(probs, groups, method, temperature=t)
                age, low, high = float(d.age[0]), float(d.low[0]), float(d.high[0])
            errors[name].append(abs(age - row.age))
            covered[name].append(low <= row.age <= high)
            widths[name].append(high - low)
    took = time.perf_counter() - began
    table = {
        name: {"mae": round(float(np.mean(errors[name])), 2),
               "interval_coverage": round(float(np.mean(covered[name])), 3),
               "mean_interval_width": round(float(np.mean(widths[name])), 1)}
        for name in methods
    }
    return {"noise": noise, "faces": len(rows) - skipped, "skipped (face found in < 2 frames)": skipped,
            "frames_each": frames,
            "split": split, "seconds": round(took, 1), "methods": table}


# ---------------------------------------------------------------------- live round trip


def live_part(frames: int) -> dict:

    from websockets.sync.client import connect

    sys.path.insert(0, str(ROOT / "bench"))
    from serve import start_server  # bench/serve.py: the launcher the serving tests use

    estimator = AgeEstimator(threads=1)
    shot_list = shots(estimator, THREE_PEOPLE[:1], 4.0)
    jpegs = [jpeg(rgb, 80) for rgb in clip_frames(shot_list, 10)]
    with start_server(None) as server:
        times, server_ms = [], []
        with connect(f"ws://127.0.0.1:{server.port}/api/v1/live", max_size=2**20) as socket:
            json.loads(socket.recv(timeout=30))  # the greeting: limits and policy
            for i in range(frames):
                began = time.perf_counter()
                socket.send(jpegs[i % len(jpegs)])
                answer = json.loads(socket.recv(timeout=30))
                times.append((time.perf_counter() - began) * 1000)
                if "error" in answer:
                    raise RuntimeError(answer)
                server_ms.append(answer["ms"])
                time.sleep(0.1)  # the page sends at most 8 frames a second
        decided = answer["faces"][0].get("decision") if answer["faces"] else None
    times.sort()
    return {"frames": frames, "frame": "640x480 JPEG, quality 80", "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "server_work_p50_ms": round(statistics.median(server_ms), 1), "last_decision": decided}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "frames", "fusion", "live"], default="all")
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "utkface", help="a prepared folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip of the frames part")
    parser.add_argument("--live-frames", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", choices=sorted(NOISE), default="mild", help="how hard frames are degraded")
    args = parser.parse_args()
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    report: dict = {"load_average_at_start": load}
    if args.part in ("all", "frames"):
        report["frames"] = frames_part(args.seconds)
    if args.part in ("all", "fusion"):
        report["fusion"] = fusion_part(args.data, args.split, args.faces, args.frames, args.seed, args.noise)
    if args.part in ("all", "live"):
        report["live"] = live_part(args.live_frames)
    with open("/proc/loadavg") as handle:
        report["load_average_at_end"] = handle.read().split()[:3]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
