"""Fixtures shared by every test file (helpers that are plain functions live in
``shared_data.py``, ``servers.py``, ``model_copies.py`` and ``built_images.py``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from model_copies import copy_model
from servers import AGEDETECT
from shared_data import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "scripts" / "train_models.sh"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI=true the browser tests must run: a missing chromium stops the run (exit 1)
    instead of letting them skip into a green CI."""
    if os.environ.get("CI") == "true" and CHROMIUM is None:
        pytest.exit("CI=true but Debian's chromium is not installed, so the browser tests cannot run "
                    "(apt-get install chromium; `make test` does)", returncode=1)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped model (ONNX file and sidecar) that a test may damage."""
    return copy_model(tmp_path / "model")


def training_data_settings() -> tuple[list[Path], int]:
    """The sources and seed `make model` prepares its data from: the defaults of ``SRC`` and
    ``SEED`` in scripts/train_models.sh, so a test's split is the shipped model's split."""
    text = TRAIN_SCRIPT.read_text()
    sources = re.search(r'^SRC=\$\{SRC:-(.+)\}$', text, re.M)
    seed = re.search(r'^SEED=\$\{SEED:-(\d+)\}$', text, re.M)
    if not (sources and seed):
        raise RuntimeError(f"{TRAIN_SCRIPT}: no SRC=${{SRC:-...}} and SEED=${{SEED:-N}} lines to read the data from")
    return [(ROOT / source).resolve() for source in shlex.split(sources.group(1))], int(seed.group(1))


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data `make model` trains on, prepared as scripts/train_models.sh prepares it (same
    sources, same seed, so the same test split): about 20 s. Skips when the sources are absent."""
    sources, seed = training_data_settings()
    missing = [str(source) for source in sources if not source.exists()]
    if missing:
        pytest.skip(f"the training data is not here: {', '.join(missing)}")
    out = tmp_path_factory.mktemp("prepared")
    subprocess.run([AGEDETECT, "data", "prepare", *map(str, sources), "--out", str(out), "--seed", str(seed), "--json"],
                   check=True, capture_output=True, timeout=600)
    return out
