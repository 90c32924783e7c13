"""Copies of the shipped age model for tests that change it: its ONNX file and sidecar in a
folder of the test's own, the sidecar (or the network) replaced where a test says so.

One helper for every test that needs such a copy; ``conftest.py`` offers it as the
``model_copy`` fixture.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agedetect.inference import DEFAULT_MODEL, sha256_of

#: The shipped model's sidecar as committed.
SIDECAR: dict = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())


def copy_model(folder: Path, sidecar: dict | None = None, onnx: bytes | None = None) -> Path:
    """``folder/age_model.onnx`` and its sidecar: the shipped model, or ``onnx`` (another
    network, with the sidecar's sha256 updated to match it), with the shipped sidecar or
    ``sidecar``. Returns the ONNX path."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "age_model.onnx"
    if onnx is None:
        shutil.copyfile(DEFAULT_MODEL, model)
    else:
        model.write_bytes(onnx)
    metadata = dict(SIDECAR if sidecar is None else sidecar)
    if onnx is not None:
        metadata["sha256"] = sha256_of(model)
    model.with_suffix(".json").write_text(json.dumps(metadata))
    return model


def model_without_typical_error(folder: Path) -> Path:
    """The shipped model with no ``typical_error`` table in its sidecar (``gap`` cannot run)."""
    return copy_model(folder, {key: value for key, value in SIDECAR.items() if key != "typical_error"})
