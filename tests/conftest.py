"""Fixtures shared by every test file (helpers that are plain functions live in
``shared_data.py``, ``servers.py``, ``model_copies.py`` and ``built_images.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_copies import copy_model


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped model (ONNX file and sidecar) that a test may damage."""
    return copy_model(tmp_path / "model")
