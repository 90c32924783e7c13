"""Where the tests (and the benchmarks) find the shared data (``../shared`` beside the
clone), and the one set of markers that skip a test with a clear reason when a part of it
is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
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
