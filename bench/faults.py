"""How far a fault of another camera or era moves the estimate, by age band.

Scanned family photos are grey or sepia, soft, small and re-compressed; UTKFace and
All-Age-Faces mostly are not. This gives every validation chip of each dataset one fault
at a time (and one photo that has several), scores each model on the same chips, and
prints each fault's MAE and the shift it causes in the 13-17 and 18-24 bias (estimate -
truth, against the same chips unfaulted): a model that reads the face and not the photo's
quality shifts little. Where the faults are:

- ``grey``, ``sepia``: colour gone, as in old prints;
- ``blur``: Gaussian, radius 1.5 px on the 64 px chip (a soft lens or a scan);
- ``low resolution``: the chip shrunk to 24 px and back (a small face in a photo);
- ``JPEG 15``: blocking of a heavily compressed web image;
- ``faded``: contrast cut to 60% (a print faded by light);
- ``scanned print``: grey, shrunk to 32 px and back, then JPEG at quality 40.

    .venv/bin/python bench/faults.py --data runs/data --model shipped=src/agedetect/weights/age_model.onnx

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from agedetect.ages import decode_ages
from agedetect.data import load_manifest
from agedetect.evaluate import band_label
from agedetect.inference import AgeEstimator

#: Sepia toning (the usual matrix), rows are output R, G, B.
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
BANDS = ((13, 17), (18, 24))


def jpeg(chip: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    chip.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def grey(chip: Image.Image) -> Image.Image:
    return ImageOps.grayscale(chip).convert("RGB")


def shrunk(chip: Image.Image, side: int) -> Image.Image:
    return chip.resize((side, side), Image.Resampling.BOX).resize(chip.size, Image.Resampling.BILINEAR)


def toned(chip: Image.Image, matrix: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(chip, np.float64) @ matrix.T, 0, 255).astype(np.uint8))


def faded(chip: Image.Image) -> Image.Image:
    pixels = np.asarray(chip, np.float64)
    return Image.fromarray(np.clip((pixels - 128.0) * 0.6 + 128.0, 0, 255).astype(np.uint8))


FAULTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda chip: chip,
    "grey": grey,
    "sepia": lambda chip: toned(chip, SEPIA),
    "blur": lambda chip: chip.filter(ImageFilter.GaussianBlur(1.5)),
    "low resolution": lambda chip: shrunk(chip, 24),
    "JPEG 15": lambda chip: jpeg(chip, 15),
    "faded": faded,
    "scanned print": lambda chip: jpeg(shrunk(grey(chip), 32), 40),
}


def error_by_band(estimates: np.ndarray, ages: np.ndarray, bands: tuple[tuple[int, int], ...] = BANDS) -> dict[str, float]:
    """MAE, and the bias (mean of estimate - truth) of each age band: ``bias_13-17``...; NaN
    for a band with no face."""
    error = estimates - ages
    cells = {"mae": float(np.abs(error).mean())}
    for low, high in bands:
        band = (ages >= low) & (ages <= high)
        cells[f"bias_{band_label(low, high)}"] = float(error[band].mean()) if band.any() else float("nan")
    return cells


def score(estimator: AgeEstimator, chips: list[Image.Image], ages: np.ndarray) -> dict:
    """Each fault's MAE and bias by band on ``chips``."""
    results = {}
    for name, fault in FAULTS.items():
        batch = np.stack([np.asarray(fault(chip)) for chip in chips])
        results[name] = error_by_band(decode_ages(estimator.chip_probabilities(batch), estimator.groups).age, ages)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a folder made by `agedetect data prepare`")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=FILE",
                        help="an exported .onnx to score, named (repeat to compare)")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    args = parser.parse_args()
    estimators = {name: AgeEstimator(path) for name, path in (spec.split("=", 1) for spec in args.model)}
    by_dataset: dict[str, list] = {}
    for row in load_manifest(args.data, split=args.split):
        by_dataset.setdefault(row.dataset, []).append(row)
    results: dict = {}
    for dataset, rows in sorted(by_dataset.items()):
        ages = np.array([row.age for row in rows], dtype=np.float64)
        chips: dict[int, list[Image.Image]] = {}  # by chip side: read once for every model of that size
        for name, estimator in estimators.items():
            side = estimator.input_size
            if side not in chips:
                chips[side] = [Image.open(row.path).convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
                               for row in rows]
            results.setdefault(dataset, {})[name] = score(estimator, chips[side], ages)

    print(f"Each fault on every {args.split!r} chip; shift: 13-17 / 18-24 bias minus the same chips' unfaulted\n")
    print("| dataset | model | " + " | ".join(FAULTS) + " |")
    print("|---|---|" + "---|" * len(FAULTS))
    for dataset, by_model in results.items():
        for name, by_fault in by_model.items():
            clean = by_fault["none"]
            cells = [f"{clean['mae']:.2f} ({clean['bias_13-17']:+.1f} / {clean['bias_18-24']:+.1f})"] + [
                f"{m['mae']:.2f} ({m['bias_13-17'] - clean['bias_13-17']:+.1f} / {m['bias_18-24'] - clean['bias_18-24']:+.1f})"
                for fault, m in by_fault.items() if fault != "none"
            ]
            print(f"| {dataset} | {name} | " + " | ".join(cells) + " |")
    print("\nCells: MAE (shift of the 13-17 / 18-24 bias); `none`: MAE (the bias itself).")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
