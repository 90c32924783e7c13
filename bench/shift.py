"""How far a model falls on photos unlike its training set: the leave-one-dataset-out table.

    bash scripts/shift_runs.sh                  # trains the recipes (runs/shift/)
    python bench/shift.py --data runs/data      # scores them; --json writes every figure

Each run in ``--runs`` (``RECIPE-DATASET.onnx`` with its run folder ``RECIPE-DATASET/``)
was trained and validated on DATASET alone. It is scored on every dataset's test split of
``--data``: the dataset it was trained on (in-domain) and the others (shifted), with the
figures that move under shift: MAE, bias (mean of estimate - truth) overall and for
13-17-year-olds, 80%-interval coverage, and 13-17-year-olds passing Challenge 25 with the
default risk cap; and the last three again after widening the run's interval as the
shipped model's is widened (``--coverage`` of validation faces), but on its own dataset's
validation faces only. Also scored, when ``--models`` names them: exported models trained
on every dataset (the shipped one, already widened), marked "all". Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agedetect.ages import decode_ages, widen
from agedetect.data import load_manifest
from agedetect.evaluate import WIDENING_SCALES, compute_metrics, smallest_covering_scale
from agedetect.inference import AgeEstimator
from agedetect.uses import screening_metrics


#: scripts/shift_runs.sh's recipes, each adding one idea to the one before.
RECIPE_ORDER = ("shipped", "balanced", "degraded", "distilled", "native", "native-distilled", "gated", "surroundings",
                "face-only", "debiased", "descriptor")


def score(probabilities: np.ndarray, ages: np.ndarray, groups) -> dict:
    metrics = compute_metrics(ages, probabilities, groups)
    screening = screening_metrics(ages, probabilities, groups, 18, 7)
    return {
        "n": metrics["n"],
        "mae": metrics["mae"],
        "bias": metrics["bias"],
        "group_accuracy": metrics["group_accuracy"],
        "interval_coverage": metrics["interval_coverage"],
        "teen_bias": metrics["mae_by_age_band"].get("13-17", {}).get("bias"),
        "teens_passed": screening["teens_passed"],
        "adults_referred": screening["adults_referred"],
        "mae_by_age_band": metrics["mae_by_age_band"],
    }


def score_answers(answers: dict[str, np.ndarray], ages: np.ndarray, datasets: np.ndarray, groups,
                  trained_on: str) -> list[dict]:
    """:func:`score` of each labelled set of probabilities, per dataset, as a table row."""
    return [{"recipe": label, "trained_on": trained_on, "tested_on": dataset,
             **score(probabilities[datasets == dataset], ages[datasets == dataset].astype(np.float64), groups)}
            for label, probabilities in answers.items() for dataset in sorted(set(datasets))]


def report(results: list[dict], heading: str, json_path: Path | None) -> None:
    """``heading`` and the table of ``results`` on stdout, and every figure into ``json_path``."""
    print(heading + "\n")
    print_table(results)
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")


def widening_scale(estimator: AgeEstimator, data: Path, dataset: str, coverage: float) -> float:
    """The temperature factor at which ``estimator``'s 80% interval covers ``coverage`` of
    ``dataset``'s validation faces (``agedetect export --calibrate-on``'s search, on one dataset)."""
    rows = load_manifest(data, split="val", datasets=[dataset])
    ages = np.array([row.age for row in rows], dtype=np.float64)
    probabilities = estimator.chip_probabilities(np.stack([estimator.load_chip(row.path) for row in rows]))
    scale, _ = smallest_covering_scale(WIDENING_SCALES, lambda s: decode_ages(widen(probabilities, s), estimator.groups),
                                       ages, np.array([dataset] * len(rows)), estimator.groups, coverage)
    return scale


def print_table(results: list[dict]) -> None:
    """The Markdown table of ``results`` (one row per model and test set; ``score``'s
    figures with ``recipe``, ``trained_on`` and ``tested_on``), shifted sets in bold."""
    print("| recipe | trained on | tested on | MAE | bias | 13-17 bias | 80% interval covers | "
          "13-17 passing Challenge 25 | adults referred | widened: covers / 13-17 passing / adults referred |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def share(value):
        return "n/a" if value is None else f"{value:.1%}"

    for r in results:
        shifted = r["trained_on"] not in ("all", r["tested_on"])
        tested = f"**{r['tested_on']}**" if shifted else r["tested_on"]
        teen = "n/a" if r["teen_bias"] is None else f"{r['teen_bias']:+.1f}"
        wide = r.get("widened")
        widened = (f"{share(wide['interval_coverage'])} / {share(wide['teens_passed'])} / "
                   f"{share(wide['adults_referred'])} (x{wide['scale']:g})" if wide else "n/a")
        print(f"| {r['recipe']} | {r['trained_on']} | {tested} | {r['mae']:.2f} | {r['bias']:+.2f} | {teen} | "
              f"{share(r['interval_coverage'])} | {share(r['teens_passed'])} | {share(r['adults_referred'])} | "
              f"{widened} |")
    print("\nBold: a dataset the model was neither trained nor validated on. Widened: the run's temperature "
          "scaled until its interval covers the --coverage share of its own dataset's validation faces, as "
          "`agedetect export --calibrate-on` does the shipped model's on every dataset.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--runs", type=Path, default=Path("runs/shift"), help="folder of RECIPE-DATASET.onnx")
    parser.add_argument("--models", action="append", default=[], help="NAME=FILE.onnx trained on every dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--coverage", type=float, default=0.85,
                        help="validation coverage each run's interval is widened to (the shipped model's)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()

    rows = load_manifest(args.data, split=args.split)
    datasets = sorted({row.dataset for row in rows})
    models = [(path.stem.rsplit("-", 1)[0], path.stem.rsplit("-", 1)[1], path) for path in args.runs.glob("*.onnx")]
    # Each dataset's runs together, in the order scripts/shift_runs.sh adds the ideas.
    models.sort(key=lambda m: (m[1], RECIPE_ORDER.index(m[0]) if m[0] in RECIPE_ORDER else len(RECIPE_ORDER), m[0]))
    models += [(name, "all", Path(file)) for name, file in (item.split("=", 1) for item in args.models)]
    if not models:
        raise SystemExit(f"no models: {args.runs} holds no RECIPE-DATASET.onnx and no --models were given")

    results = []
    for recipe, trained_on, path in models:
        estimator = AgeEstimator(path)
        epochs = estimator.metadata["members"][0]["config"]["epochs"] if estimator.metadata.get("members") else None
        # A run's interval widened as the shipped one is, but on its own dataset's validation
        # faces only: what the age check would get on photos unlike everything it was tuned on.
        scale = None if trained_on == "all" else widening_scale(estimator, args.data, trained_on, args.coverage)
        for dataset in datasets:
            subset = [row for row in rows if row.dataset == dataset]
            ages = np.array([row.age for row in subset], dtype=np.float64)
            chips = np.stack([estimator.load_chip(row.path) for row in subset])
            probabilities = estimator.chip_probabilities(chips)
            figures = score(probabilities, ages, estimator.groups)
            widened = None
            if scale is not None:
                wide = score(widen(probabilities, scale), ages, estimator.groups)
                widened = {"scale": scale} | {key: wide[key] for key in
                                              ("interval_coverage", "teens_passed", "adults_referred")}
            results.append({"recipe": recipe, "trained_on": trained_on, "tested_on": dataset, "epochs": epochs,
                            **figures, "widened": widened})

    report(results, f"Leave-one-dataset-out on the {args.split} splits of {args.data} "
                    f"({', '.join(f'{d} {sum(r.dataset == d for r in rows):,}' for d in datasets)} faces)", args.json)


if __name__ == "__main__":
    main()
