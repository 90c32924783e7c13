"""Weight interpolation toward the pretrained network (WiSE-FT), on the dataset a run never saw.

    python bench/weight_interpolation.py --data runs/data \
        --run runs/shift/gated-utkface --run runs/shift/gated-aaf --json runs/weight-interpolation.json

Each ``--run`` is a folder made by ``agedetect train --model final`` from the pretrained
ResNet-10 (``scripts/shift_runs.sh``'s leave-one-dataset-out runs). For each ``--alpha`` its
weights become ``alpha * fine-tuned + (1 - alpha) * pretrained`` (Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022: the mixed network often holds up better on
photos unlike the fine-tuning set, at no cost per face), and the network is scored on every
dataset's test split with the figures of ``bench/shift.py``. Alpha 1 is the run as trained,
0 the untouched pretrained network. Needs the ``train`` extra (PyTorch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from agedetect.labels import AgeGroups
from agedetect.models import create_model
from agedetect.train import load_checkpoint, load_split, predict_probabilities
from combine_members import average_weights
from shift import report, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--run", type=Path, action="append", required=True, help="a run folder of `final` (repeatable)")
    parser.add_argument("--alpha", type=float, action="append", default=None,
                        help="share of the fine-tuned weights (repeatable; default 1, 0.85, 0.7, 0.5)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    alphas = args.alpha or [1.0, 0.85, 0.7, 0.5]

    results = []
    for run in args.run:
        model, state = load_checkpoint(run)
        if model.spec.name != "final":
            raise SystemExit(f"{run}: a {model.spec.name!r} run; only `final` starts from the pretrained network")
        trained_on = ",".join(state["config"].get("datasets") or ["all"])
        # One pass per chip, as scripts/shift_runs.sh exports the runs (--no-mirror).
        model.spec.options["flip_average"] = False
        pretrained = create_model("final", input_size=model.spec.input_size, crop=model.spec.crop).state_dict()
        fine_tuned = {name: value.clone() for name, value in model.state_dict().items()}
        split = load_split(args.data, args.split, model.spec.input_size)
        groups = AgeGroups.from_dict(model.spec.groups)
        for alpha in alphas:
            model.load_state_dict(average_weights([fine_tuned, pretrained], [alpha, 1 - alpha]))
            probabilities = predict_probabilities(model, split.chips, torch.device("cpu"))
            for dataset in sorted(set(split.datasets)):
                mask = split.datasets == dataset
                figures = score(probabilities[mask], split.ages[mask].astype(np.float64), groups)
                results.append({"recipe": f"{run.name} × {alpha:g}", "run": run.name, "alpha": alpha,
                                "trained_on": trained_on, "tested_on": dataset, **figures})

    report(results, f"Fine-tuned weights mixed with the pretrained network's, on the {args.split} splits of {args.data} "
                    "(recipe: the run, and the share of its fine-tuned weights)", args.json)


if __name__ == "__main__":
    main()
