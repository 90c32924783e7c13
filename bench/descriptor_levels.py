"""What dlib's face descriptor network knows about age, level by level: a quick head fitted
on each level's features of the frozen network, before any age head is trained.

    python bench/descriptor_levels.py --data runs/data [--train-faces N] [--json FILE]

Every chip of the training split (or N of them, drawn with a fixed seed) and of the
validation split is read as the ``descriptor`` model reads it (64 px, scaled up to 150 inside
the network). From each read it keeps the 128 numbers the network was taught to give
(``descriptor``) and the average over the chip of each of several levels' feature maps
(``level N``: :attr:`agedetect.models.FaceDescriptorNet.features` ``[N]``). A small neural
network (scikit-learn's ``MLPRegressor``, one hidden layer of 256, the mean of two seeds) is
fitted on the training faces' features and their ages, and scored on the validation faces:
MAE and 13-17 bias per dataset. The same head on every set of features, so the rows compare
what the features hold, not how well a head was trained: the ``descriptor`` and
``descriptor_levels`` models' trained heads do better than these on both.

The network was taught to tell people apart at any age, so its 128 numbers drop much of what
its last levels hold about age; the ``descriptor_levels`` model's head reads those levels
too (:data:`agedetect.models.DESCRIPTOR_LEVELS`). Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from agedetect.data import load_manifest
from agedetect.models import DESCRIPTOR_LEVELS, create_model
from agedetect.train import load_chips

#: The levels read on their own (64, 128, 256 and 256 channels), then those the model reads, together.
LEVELS = (6, 9, 12, 13)
FEATURE_SETS = {
    "descriptor": ("descriptor",),
    **{f"level {level}": (f"level {level}",) for level in LEVELS},
    "descriptor and levels " + ", ".join(map(str, DESCRIPTOR_LEVELS)) + " (descriptor_levels)":
        ("descriptor", *(f"level {level}" for level in DESCRIPTOR_LEVELS)),
}
TEENS = (13, 17)


def features(chips: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """The descriptor and each of :data:`LEVELS`' averaged feature maps, per chip."""
    model = create_model("descriptor").eval()
    body = model.network.body
    names = ("descriptor", *(f"level {n}" for n in LEVELS))
    found: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with torch.inference_mode():
        for start in range(0, len(chips), batch):
            x = model.input(torch.from_numpy(chips[start : start + batch]))
            x = F.interpolate(x, size=(model.network.side,) * 2, mode="bilinear", align_corners=False)
            for name, read in zip(names, body.read_levels(x, LEVELS)):
                found[name].append(read.numpy())
    return {name: np.concatenate(parts) for name, parts in found.items()}


def fit_and_score(train_x: np.ndarray, train_ages: np.ndarray, val_x: np.ndarray, seeds=(0, 1)) -> np.ndarray:
    """Validation estimates of the mean of ``seeds`` heads fitted on standardised features."""
    scaler = StandardScaler().fit(train_x)
    train_x, val_x = scaler.transform(train_x), scaler.transform(val_x)
    return np.mean([
        MLPRegressor(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=seed)
        .fit(train_x, train_ages).predict(val_x)
        for seed in seeds
    ], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--train-faces", type=int, default=None, help="fit on this many training faces (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="which training faces --train-faces draws")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()

    read = {}
    for split in ("train", "val"):
        rows = load_manifest(args.data, split=split)
        if split == "train" and args.train_faces is not None and args.train_faces < len(rows):
            pick = np.random.default_rng(args.seed).choice(len(rows), args.train_faces, replace=False)
            rows = [rows[i] for i in sorted(pick)]
        chips = load_chips([row.path for row in rows], create_model("descriptor").spec.input_size,
                           args.data / "cache")
        print(f"reading {len(rows)} {split} chips", file=sys.stderr)
        read[split] = (features(chips), np.array([row.age for row in rows], dtype=np.float64),
                       np.array([row.dataset for row in rows]))

    (train_features, train_ages, _), (val_features, val_ages, val_datasets) = read["train"], read["val"]
    datasets = sorted(set(val_datasets))
    results = []
    for label, parts in FEATURE_SETS.items():
        estimates = fit_and_score(np.concatenate([train_features[p] for p in parts], axis=1), train_ages,
                                  np.concatenate([val_features[p] for p in parts], axis=1))
        row = {"features": label, "width": int(sum(train_features[p].shape[1] for p in parts))}
        for dataset in datasets:
            mask = val_datasets == dataset
            teens = mask & (val_ages >= TEENS[0]) & (val_ages <= TEENS[1])
            row[dataset] = {"mae": float(np.mean(np.abs(estimates[mask] - val_ages[mask]))),
                            "teen_bias": float(np.mean(estimates[teens] - val_ages[teens])) if teens.any() else None}
        results.append(row)

    print(f"A head fitted on {len(train_ages)} training faces' features, scored on the validation faces "
          f"of {args.data}\n")
    print("| features | numbers | " + " | ".join(f"{d} MAE | {d} 13-17 bias" for d in datasets) + " |")
    print("|---|---:|" + "---:|---:|" * len(datasets))
    for row in results:
        cells = [f"{row[d]['mae']:.2f} | " + ("" if row[d]["teen_bias"] is None else f"{row[d]['teen_bias']:+.1f}")
                 for d in datasets]
        print(f"| {row['features']} | {row['width']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"train_faces": len(train_ages), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
