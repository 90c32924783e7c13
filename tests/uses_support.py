"""Shared by tests/test_uses.py and tests/test_cli_uses.py: real photos and chips pasted on a
canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from shared_data import CHIPS, PHOTOS
COUPLE = PHOTOS / "people" / "couple.jpg"
ONE_FACE = PHOTOS / "people" / "img1.jpg"
NO_FACE = PHOTOS / "no-faces" / "1334.jpg"  # a scene the detector finds no face in

# UTKFace chips (true age first in the name): a small child and an old man.
CHILD = "3_0_2_20161219141016496.jpg.chip.jpg"
OLD = "72_1_0_20170105164536452.jpg.chip.jpg"

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
