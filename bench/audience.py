"""How close audience analytics comes to the true age-group mix, on held-back faces.

    python bench/audience.py --data runs/data --split test [--model path.onnx]

Scores the prepared split's aligned chips once, then compares the true group shares with
two estimates: counting each face's most likely group (argmax), and summing the faces'
group probabilities (what ``agedetect audience`` reports as ``shares``). The distance is
total variation (half the L1 distance; target <= 0.08). Besides the whole split, it
draws audiences of 100 faces — at random, and skewed young or old — because a real
crowd is rarely the test split's mix.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agedetect.ages import decode_ages
from agedetect.evaluate import samples_from_prepared, score_samples
from agedetect.inference import AgeEstimator
from agedetect.uses import group_shares, total_variation

TARGET = 0.08


def distances(true_index: np.ndarray, decoded, rows: np.ndarray, n_groups: int) -> tuple[float, float]:
    true = np.bincount(true_index[rows], minlength=n_groups) / len(rows)
    argmax = np.bincount(decoded.group_index[rows], minlength=n_groups) / len(rows)
    summed = group_shares(decoded.group_probabilities[rows])
    return total_variation(true, argmax), total_variation(true, summed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder made by `agedetect data prepare`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", type=Path, default=None, help="an exported .onnx (default: the shipped model)")
    parser.add_argument("--draws", type=int, default=500, help="audiences drawn per kind")
    parser.add_argument("--size", type=int, default=100, help="faces per drawn audience")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    estimator = AgeEstimator(args.model)
    scored = score_samples(samples_from_prepared(args.data, args.split), estimator)
    groups = estimator.groups
    ages = np.array([s.age for s in scored.samples], dtype=np.float64)
    decoded = decode_ages(scored.probabilities, groups)
    true_index = groups.index_of(ages)
    n = len(ages)
    rng = np.random.default_rng(args.seed)

    # Skewed crowds: faces drawn with weights falling (young) or rising (old) with true age.
    weights = {
        "random": np.ones(n),
        "young crowd": np.exp(-ages / 20),
        "old crowd": np.exp(ages / 20),
    }
    results = {"whole split": {"faces": n, **dict(zip(("argmax", "summed"), distances(true_index, decoded, np.arange(n), len(groups))))}}
    for kind, weight in weights.items():
        tv = np.array([
            distances(true_index, decoded, rng.choice(n, args.size, replace=False, p=weight / weight.sum()), len(groups))
            for _ in range(args.draws)
        ])
        results[f"{kind} x{args.size}"] = {
            "faces": args.size, "argmax": float(tv[:, 0].mean()), "summed": float(tv[:, 1].mean()),
            "argmax_p95": float(np.percentile(tv[:, 0], 95)), "summed_p95": float(np.percentile(tv[:, 1], 95)),
        }

    true = np.bincount(true_index, minlength=len(groups)) / n
    print(f"{estimator.metadata.get('name')} ({estimator.metadata['sha256'][:8]}) on {n} {args.split} faces of {args.data.name}")
    print("groups:", list(groups.labels))
    print("true shares:    ", np.round(true, 3).tolist())
    print("argmax shares:  ", np.round(np.bincount(decoded.group_index, minlength=len(groups)) / n, 3).tolist())
    print("summed shares:  ", np.round(group_shares(decoded.group_probabilities), 3).tolist())
    print("\n| audience | faces | TV argmax (mean) | TV summed (mean) | TV argmax p95 | TV summed p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, r in results.items():
        print(f"| {kind} | {r['faces']} | {r['argmax']:.3f} | {r['summed']:.3f} | "
              f"{r.get('argmax_p95', float('nan')):.3f} | {r.get('summed_p95', float('nan')):.3f} |")
    print(f"\ntarget: TV <= {TARGET}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
