"""Where the tests find the shared data (``../shared`` beside the clone), and markers that
skip a test with a clear reason when a part of it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PHOTOS = SHARED / "data" / "photos"
PEOPLE = PHOTOS / "people"
NO_FACES = PHOTOS / "no-faces"
CHIPS = SHARED / "data" / "utkface" / "UTKFace"
needs_photos = pytest.mark.skipif(not PEOPLE.is_dir(), reason=f"{PEOPLE} not present")
needs_chips = pytest.mark.skipif(not CHIPS.is_dir(), reason=f"{CHIPS} not present")
AAF = SHARED / "data" / "aaf" / "faces"
needs_aaf = pytest.mark.skipif(not AAF.is_dir(), reason=f"{AAF} not present")


def copy_sample(source: Path, dest: Path, every: int, count: int, start: int = 0) -> list[str]:
    """Copy every ``every``-th file of ``source`` (sorted by name, from ``start``), at most
    ``count`` of them, into ``dest``; returns their names."""
    import os
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(source))[start::every][:count]
    for name in names:
        shutil.copyfile(source / name, dest / name)
    return names
