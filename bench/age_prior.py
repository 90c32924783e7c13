"""Is the pull toward the mid-twenties the training set's age mix, learnt as a prior?

A network trained on a mix of ages answers ``p(age | face)``, which carries the mix it was
trained on: ``p(face | age) x p_train(age)``. If the teenagers' bias on photos unlike the
training set were that prior at work, dividing it out would remove it. This reweights the
shipped model's distribution as served, ``p(age) x q(age)^-alpha`` (renormalised), ``q``
the age mix its members were drawn from: each dataset's training ages, weighted ``n^-b`` as
``agedetect train --balance b`` draws them, smoothed over +-2 years. ``alpha`` 0 is the
model as shipped, 1 assumes every age equally likely before seeing the face.

Scored on each dataset's validation chips and on two stand-ins from bench/whole_photos.py
built from the same number of validation faces: *chip, other surroundings* (aligned chips,
the face on a scene) and *in a scene* (the full pipeline: detect, align, estimate).
Validation faces share the training mix, so a correction that only trades the mix for
another would cost MAE there; the 13-17 and 51+ columns say whether it buys any of the
bias it is meant to remove.

    .venv/bin/python bench/age_prior.py --data runs/data --json runs/age-prior.json

Prints figures; it is not a test.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from agedetect.data import load_manifest
from agedetect.errors import NoFaceError
from agedetect.evaluate import compute_metrics
from agedetect.inference import AGE_BINS, AgeEstimator
from whole_photos import PHOTOS, build, in_a_scene, other_surroundings, sample_faces, stand_in_parser

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SMOOTHING_YEARS = 2.0


def training_prior(data: Path, balance: float) -> np.ndarray:
    """The age mix training drew chips from: per dataset ``n(age)^(1 - balance)``, summed,
    smoothed, with a floor so an age no one was trained on is not divided by zero."""
    counts: dict[str, np.ndarray] = {}
    for row in load_manifest(data, split="train"):
        counts.setdefault(row.dataset, np.zeros(AGE_BINS))[min(row.age, AGE_BINS - 1)] += 1
    # An age a dataset has no chips of draws none, whatever the balance (0 ** 0 would be 1).
    mix = sum(np.where(n > 0, n, 1.0) ** (1.0 - balance) * (n > 0) for n in counts.values())
    offsets = np.arange(-3 * SMOOTHING_YEARS, 3 * SMOOTHING_YEARS + 1)
    kernel = np.exp(-0.5 * (offsets / SMOOTHING_YEARS) ** 2)
    mix = np.convolve(mix, kernel / kernel.sum(), mode="same") + 1e-3 * mix.max()
    return mix / mix.sum()


def reweighted(probabilities: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    weighted = probabilities * prior ** -alpha
    return weighted / weighted.sum(axis=1, keepdims=True)


def stand_in(rows: list, folder: Path, make, seed: int, estimator: AgeEstimator, aligned: bool):
    """Build a stand-in with bench/whole_photos.py's maker; (true ages, distributions, photos
    with no face found)."""
    labels = build(rows, folder, make, seed)
    with open(labels, newline="") as handle:
        labelled = [(folder / row["path"], int(row["age"])) for row in csv.DictReader(handle)]
    if aligned:  # no detection: every chip is scored, in batches
        chips = [estimator.load_chip(path) for path, _ in labelled]
        return np.array([age for _, age in labelled]), estimator.chip_probabilities(chips), 0
    ages, distributions, missed = [], [], 0
    for path, age in labelled:
        try:
            distributions.append(estimator.main_face_probabilities(path))
        except NoFaceError:
            missed += 1
            continue
        ages.append(age)
    return np.array(ages), np.array(distributions), missed


def main() -> None:
    args = stand_in_parser(__doc__, "val", 1000).parse_args()
    estimator = AgeEstimator(args.model) if args.model else AgeEstimator()
    balances = [float(m["config"].get("balance", 0.0)) for m in estimator.metadata["members"]]
    prior = training_prior(args.data, float(np.mean(balances)))
    rows = load_manifest(args.data, split=args.split)
    sample = sample_faces(args)
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for dataset in sorted({row.dataset for row in rows}):
        mine = [row for row in rows if row.dataset == dataset]
        chips = [np.asarray(Image.open(row.path).convert("RGB")) for row in mine]
        sets[dataset] = (np.array([row.age for row in mine]), estimator.chip_probabilities(chips))
    scenes = sorted((PHOTOS / "no-faces").glob("*.jp*g"))
    missed = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, make, aligned in (("chip, other surroundings", lambda c, r: other_surroundings(c, r, scenes), True),
                                    ("in a scene", lambda c, r: in_a_scene(c, r, scenes), False)):
            folder = Path(scratch) / name.replace(", ", "-").replace(" ", "-")
            ages, distributions, missed[name] = stand_in(sample, folder, make, args.seed, estimator, aligned)
            sets[name] = (ages, distributions)

    results = []
    for alpha in ALPHAS:
        for name, (ages, distributions) in sets.items():
            m = compute_metrics(ages, reweighted(distributions, prior, alpha), estimator.groups)
            bands = m["mae_by_age_band"]
            results.append({"alpha": alpha, "set": name, "n": m["n"], "mae": m["mae"],
                            "interval_coverage": m["interval_coverage"],
                            "bias": {band: figures["bias"] for band, figures in bands.items()}})

    print(f"{args.split} split of {args.data}; prior from its train split, balance {np.mean(balances):g}; "
          f"in a scene: {missed['in a scene']} of {len(sample)} photos with no face found\n")
    print("MAE (13-17 bias / 51-70 bias) per set\n")
    print("| alpha | " + " | ".join(sets) + " | mean MAE |")
    print("|---|" + "---|" * (len(sets) + 1))
    for alpha in ALPHAS:
        mine = [r for r in results if r["alpha"] == alpha]
        cells = [f"{r['mae']:.2f} ({r['bias'].get('13-17', 0):+.1f} / {r['bias'].get('51-70', 0):+.1f})" for r in mine]
        print(f"| {alpha:g} | " + " | ".join(cells) + f" | {np.mean([r['mae'] for r in mine]):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "limit": args.limit, "missed": missed,
                                         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
