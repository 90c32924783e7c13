"""Benchmark ``agedetect predict`` throughput on a folder of UTKFace chips.

Runs the real command (a fresh process, as a user would) on the first ``--chips`` chips
of ``shared/data/utkface/UTKFace`` (linked into a scratch folder, not copied) and reports
images per second, wall clock including start-up, for 1 and 2 workers:

- ``--aligned``: the chips are taken as aligned faces, detection skipped (the mode for
  chip folders; target >= 300 chips/s with 2 workers on the project's 2-core machine);
- detection on: each chip goes through the face detector like any photo (for comparison,
  on fewer chips).

    .venv/bin/python bench/predict.py                  # ~1 minute
    .venv/bin/python bench/predict.py --chips 1000 --json

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface" / "UTKFace"
AGEDETECT = str(Path(sys.executable).with_name("agedetect"))
TARGET_ALIGNED_2_WORKERS = 300.0


def run(folder: Path, workers: int, aligned: bool, model: str | None) -> tuple[float, int, int]:
    """Wall seconds, rows with an age, rows with an error."""
    command = [AGEDETECT, "predict", str(folder), "--format", "json", "--workers", str(workers)]
    command += ["--aligned"] if aligned else []
    command += ["--model", model] if model else []
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    rows = json.loads(result.stdout)
    return wall, sum(r["age"] is not None for r in rows), sum(r["error"] is not None for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chips", type=int, default=3000, help="chips for the --aligned runs (default 3000)")
    parser.add_argument("--detect-chips", type=int, default=300, help="chips for the detection runs (default 300)")
    parser.add_argument("--model", help="an exported .onnx (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not CHIPS.is_dir():
        raise SystemExit(f"{CHIPS} not found")
    names = sorted(p.name for p in CHIPS.glob("*.chip.jpg"))

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for aligned, count in ((True, args.chips), (False, args.detect_chips)):
            folder = Path(scratch) / f"chips-{count}-{aligned}"
            folder.mkdir()
            for name in names[:: max(1, len(names) // count)][:count]:
                (folder / name).symlink_to(CHIPS / name)
            mode = "aligned" if aligned else "detect"
            for workers in (1, 2):
                wall, _, failed = run(folder, workers, aligned, args.model)
                figures[f"{mode}_{workers}_worker{'s' * (workers > 1)}_images_per_s"] = round(count / wall, 1)
                figures[f"{mode}_{workers}_worker{'s' * (workers > 1)}_no_age"] = failed
                figures[f"{mode}_images"] = count

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print("agedetect predict on UTKFace chips, whole command wall clock (start-up included)")
    for key, value in figures.items():
        verdict = ""
        if key == "aligned_2_workers_images_per_s":
            met = value >= TARGET_ALIGNED_2_WORKERS
            verdict = f"   target >= {TARGET_ALIGNED_2_WORKERS:g}: {'met' if met else 'MISSED'}"
        print(f"  {key:<34} {value:>8}{verdict}")


if __name__ == "__main__":
    main()
