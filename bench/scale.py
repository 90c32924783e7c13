"""Benchmark the Ray engine against the local one on UTKFace chips.

Runs the real command (a fresh process each, as a user would) on ``--chips`` chips spread
over ``shared/data/utkface/UTKFace``, named in a ``--list`` file (nothing is copied):

- ``agedetect predict --list L --format json --workers N`` (the local process pool);
- ``agedetect predict --list L --engine ray --actors N --out DIR`` (Ray started locally),

for N = 1 and 2, each once, in that order, and prints images per second: over the whole
command (start-up included: Ray's start costs seconds a cluster already paid) and, for
Ray, over the job alone (``seconds`` in summary.json). Ratios compare runs of this one
invocation, so a busy machine slows all of them alike (roughly: the load is printed).
Both engines must count the same faces, or the script stops.

    .venv/bin/python bench/scale.py                      # 2,000 chips with detection, ~3 minutes on 2 cores
    .venv/bin/python bench/scale.py --aligned --json     # chips as aligned faces (no detection)

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface" / "UTKFace"
AGEDETECT = str(Path(sys.executable).with_name("agedetect"))


def run_local(listing: Path, workers: int, aligned: bool) -> dict:
    command = [AGEDETECT, "predict", "--list", str(listing), "--format", "json", "--workers", str(workers)]
    began = time.perf_counter()
    result = subprocess.run(command + ["--aligned"] * aligned, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    rows = json.loads(result.stdout)
    return {"wall_s": wall, "faces": sum(r["age"] is not None for r in rows), "files": len({r["file"] for r in rows})}


def run_ray(listing: Path, actors: int, aligned: bool, out: Path) -> dict:
    command = [AGEDETECT, "predict", "--list", str(listing), "--engine", "ray", "--actors", str(actors),
               "--out", str(out), "--format", "json"]
    began = time.perf_counter()
    result = subprocess.run(command + ["--aligned"] * aligned, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode:
        raise SystemExit(f"ray run failed:\n{result.stderr}")
    summary = json.loads(result.stdout)
    if not summary["reconciled"]:
        raise SystemExit(f"ray run lost inputs: {summary}")
    return {"wall_s": wall, "job_s": summary["seconds"], "faces": summary["faces"], "files": summary["files_seen"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chips", type=int, default=2000, help="chips to run (default 2000)")
    parser.add_argument("--aligned", action="store_true", help="take the chips as aligned faces (skip detection)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not CHIPS.is_dir():
        raise SystemExit(f"{CHIPS} not found")
    names = sorted(p.name for p in CHIPS.glob("*.chip.jpg"))
    chosen = names[:: max(1, len(names) // args.chips)][: args.chips]

    load_before = os.getloadavg()[0]
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "chips.txt"
        listing.write_text("".join(f"{CHIPS / name}\n" for name in chosen))
        for n in (1, 2):
            runs[f"local_{n}"] = run_local(listing, n, args.aligned)
        for n in (1, 2):
            runs[f"ray_{n}"] = run_ray(listing, n, args.aligned, Path(scratch) / f"ray-{n}")
    faces = {name: run["faces"] for name, run in runs.items()}
    if len(set(faces.values())) != 1 or any(run["files"] != len(chosen) for run in runs.values()):
        raise SystemExit(f"the engines disagree on what they read: {faces}")

    count = len(chosen)
    rate = {name: count / run["wall_s"] for name, run in runs.items()}
    job_rate = {name: count / run["job_s"] for name, run in runs.items() if "job_s" in run}
    figures = {
        "chips": count,
        "mode": "aligned (no detection)" if args.aligned else "detection + estimation",
        "faces": faces["local_1"],
        "cores": os.cpu_count(),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "images_per_s_whole_command": {k: round(v, 1) for k, v in rate.items()},
        "images_per_s_ray_job_only": {k: round(v, 1) for k, v in job_rate.items()},
        "ratios": {
            "local_2_over_local_1": round(rate["local_2"] / rate["local_1"], 2),
            "ray_2_over_ray_1_whole_command": round(rate["ray_2"] / rate["ray_1"], 2),
            "ray_2_over_ray_1_job_only": round(job_rate["ray_2"] / job_rate["ray_1"], 2),
            "ray_2_over_local_2_whole_command": round(rate["ray_2"] / rate["local_2"], 2),
            "ray_2_job_only_over_local_2": round(job_rate["ray_2"] / rate["local_2"], 2),
        },
        "seconds": {k: round(run["wall_s"], 1) for k, run in runs.items()}
        | {f"{k}_job": round(run["job_s"], 1) for k, run in runs.items() if "job_s" in run},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"agedetect predict on {count} UTKFace chips, {figures['mode']}, {figures['faces']} faces; "
          f"{figures['cores']} cores, load {figures['load_average_before_after'][0]} -> "
          f"{figures['load_average_before_after'][1]}")
    print(f"  {'run':<10} {'whole command':>16} {'Ray job only':>16}")
    for name in runs:
        job = f"{job_rate[name]:.1f} img/s" if name in job_rate else ""
        print(f"  {name:<10} {rate[name]:>10.1f} img/s {job:>16}")
    for key, value in figures["ratios"].items():
        print(f"  {key:<34} {value:>6.2f}x")


if __name__ == "__main__":
    main()
