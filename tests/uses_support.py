"""Shared by tests/test_uses.py and tests/test_cli_uses.py: real photos, chips pasted on a
canvas, and the shipped model with a ``typical_error`` table in its sidecar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from agedetect.inference import DEFAULT_MODEL

from shared_data import CHIPS, PHOTOS
COUPLE = PHOTOS / "people" / "couple.jpg"
ONE_FACE = PHOTOS / "people" / "img1.jpg"
NO_FACE = PHOTOS / "no-faces" / "1334.jpg"  # a scene the detector finds no face in

# UTKFace chips (true age first in the name): a small child and an old man.
CHILD = "3_0_2_20161219141016496.jpg.chip.jpg"
OLD = "72_1_0_20170105164536452.jpg.chip.jpg"

#: Used only while the shipped sidecar has no typical_error of its own: the provisional
#: model's error by true-age band on the validation split
#: (`agedetect evaluate /tmp/utk --split val --json`, mae_by_age_band).
STAND_IN_TYPICAL_ERROR = {
    "0-12": {"n": 439, "mae": 1.658, "p90_error": 3.512},
    "13-17": {"n": 96, "mae": 5.791, "p90_error": 11.705},
    "18-24": {"n": 324, "mae": 4.298, "p90_error": 7.775},
    "25-35": {"n": 1021, "mae": 3.901, "p90_error": 8.101},
    "36-50": {"n": 499, "mae": 6.451, "p90_error": 13.168},
    "51-70": {"n": 424, "mae": 6.959, "p90_error": 15.262},
    "71+": {"n": 146, "mae": 8.225, "p90_error": 18.565},
}


def has_typical_error(metadata: dict) -> bool:
    table = metadata.get("typical_error")
    return isinstance(table, dict) and bool(table) and all(isinstance(v, dict) for v in table.values())


def model_with_typical_error(folder: Path) -> Path:
    """The shipped model if its sidecar has a typical_error table, else a copy of it in
    ``folder`` whose sidecar adds the stand-in table (the ONNX file, so its sha256, is unchanged)."""
    metadata = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    if has_typical_error(metadata):
        return DEFAULT_MODEL
    return _copy_model(folder, metadata | {"typical_error": STAND_IN_TYPICAL_ERROR})


def model_without_typical_error(folder: Path) -> Path:
    metadata = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    metadata.pop("typical_error", None)
    return _copy_model(folder, metadata)


def _copy_model(folder: Path, metadata: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "age_model.onnx"
    try:
        model.symlink_to(DEFAULT_MODEL)
    except OSError:
        shutil.copyfile(DEFAULT_MODEL, model)
    model.with_suffix(".json").write_text(json.dumps(metadata))
    return model


def pasted(*names: str, size: int = 160) -> np.ndarray:
    """UTKFace chips pasted side by side on a grey canvas: a photo with faces of known age."""
    canvas = Image.new("RGB", (60 + (size + 60) * len(names), size + 120), (128, 124, 120))
    for index, name in enumerate(names):
        chip = Image.open(CHIPS / name).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        canvas.paste(chip, (60 + index * (size + 60), 60))
    return np.asarray(canvas)


def save_pasted(path: Path, *names: str) -> Path:
    Image.fromarray(pasted(*names)).save(path, quality=95)
    return path


def corrupt_jpeg(path: Path) -> Path:
    """The first 600 bytes of a real JPEG: a header and then nothing."""
    path.write_bytes(ONE_FACE.read_bytes()[:600])
    return path
