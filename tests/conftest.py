"""Fixtures shared by every test file (helpers that are plain functions live in
``shared_data.py``, ``servers.py``, ``model_copies.py`` and ``built_images.py``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from model_copies import copy_model
from servers import AGEDETECT, ThreadedServer
from shared_data import CHIPS, CHROMIUM, training_settings


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI=true the browser tests must run: a missing chromium stops the run (exit 1)
    instead of letting them skip into a green CI."""
    if os.environ.get("CI") == "true" and CHROMIUM is None:
        pytest.exit("CI=true but Debian's chromium is not installed, so the browser tests cannot run "
                    "(apt-get install chromium; `make test` does)", returncode=1)


@pytest.fixture(scope="module")
def base_url():
    """The web app on the shipped model, served on loopback for one test module's browser."""
    from agedetect.web import create_app

    with ThreadedServer(create_app()) as server:
        yield server.url


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped model (ONNX file and sidecar) that a test may damage."""
    return copy_model(tmp_path / "model")


@pytest.fixture(scope="session")
def prepared_utkface(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UTKFace chips prepared as `make model` prepares them (same seed). Each dataset is
    split on its own (agedetect.data.assign_splits), so this UTKFace test split is the one the
    shipped model was scored on, whatever other datasets `make model` adds: about 20 s."""
    if not CHIPS.is_dir():
        pytest.skip(f"UTKFace chips not found at {CHIPS}")
    _, seed = training_settings()
    out = tmp_path_factory.mktemp("prepared")
    subprocess.run([AGEDETECT, "data", "prepare", str(CHIPS.parent), "--out", str(out), "--seed", str(seed), "--json"],
                   check=True, capture_output=True, timeout=600)
    return out
