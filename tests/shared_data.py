"""Where the tests (and the benchmarks) find the shared data (``../shared`` beside the
clone), and the one set of markers that skip a test with a clear reason when a part of it
is absent."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TRAIN_SCRIPT = ROOT / "scripts" / "train_models.sh"
PHOTOS = SHARED / "data" / "photos"
PEOPLE = PHOTOS / "people"
NO_FACES = PHOTOS / "no-faces"
CMU_MIT = PHOTOS / "cmu-mit"
CHIPS = SHARED / "data" / "utkface" / "UTKFace"

needs_photos = pytest.mark.skipif(not PEOPLE.is_dir(), reason=f"{PEOPLE} not present")
needs_chips = pytest.mark.skipif(not CHIPS.is_dir(), reason=f"UTKFace chips not found at {CHIPS}")
needs_data = pytest.mark.skipif(not (PEOPLE.is_dir() and CHIPS.is_dir()), reason=f"{SHARED}/data not present")
AAF = SHARED / "data" / "aaf" / "faces"
needs_aaf = pytest.mark.skipif(not AAF.is_dir(), reason=f"{AAF} not present")

#: Debian's chromium, which the browser tests drive (None when it is not installed).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
#: The marks of a test that drives the page in headless Chromium on the shared photos.
BROWSER_TEST = [pytest.mark.browser, pytest.mark.slow, needs_chromium, needs_photos]


def training_settings() -> tuple[list[Path], int]:
    """The sources and seed `make model` prepares its data from: the defaults of ``SOURCES``
    (``SRC`` before it) and ``SEED`` in scripts/train_models.sh."""
    text = TRAIN_SCRIPT.read_text()
    sources = re.search(r'^(?:SOURCES|SRC)=\$\{(?:SOURCES|SRC):-(.+)\}$', text, re.M)
    seed = re.search(r'^SEED=\$\{SEED:-(\d+)\}$', text, re.M)
    if not (sources and seed):
        raise RuntimeError(f"{TRAIN_SCRIPT}: no SOURCES=${{SOURCES:-...}} and SEED=${{SEED:-N}} lines to read")
    return [(ROOT / source).resolve() for source in shlex.split(sources.group(1))], int(seed.group(1))


def copy_sample(source: Path, dest: Path, every: int, count: int, start: int = 0) -> list[str]:
    """Copy every ``every``-th file of ``source`` (sorted by name, from ``start``), at most
    ``count`` of them, into ``dest``; returns their names."""
    import os

    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(source))[start::every][:count]
    for name in names:
        shutil.copyfile(source / name, dest / name)
    return names


def load_script(path: Path) -> ModuleType:
    """A script of the repo (scripts/, bench/) loaded as a module, so a test calls its code
    instead of restating it. Its folder is on ``sys.path`` while it loads, as when Python runs
    it, so it imports its neighbours (bench/whole_photos.py imports bench/faults.py). It is
    in ``sys.modules`` while its code runs, as an imported module is (dataclasses look their
    module up there)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
