"""bench/combine_members.py's test-time views move a chip the way their names say."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from shared_data import ROOT, load_script  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    return load_script(ROOT / "bench" / "combine_members.py")


def _dot_chip(row: int, column: int, side: int = 64) -> np.ndarray:
    """A black chip with one white 4x4 square whose top-left corner is at (row, column)."""
    chip = np.zeros((1, side, side, 3), np.uint8)
    chip[0, row:row + 4, column:column + 4] = 255
    return chip


def _centre(chip: np.ndarray) -> tuple[float, float]:
    """The brightness-weighted centre (row, column) of a one-chip batch."""
    weight = chip[0, :, :, 0].astype(np.float64)
    rows, columns = np.indices(weight.shape)
    return (rows * weight).sum() / weight.sum(), (columns * weight).sum() / weight.sum()


def test_the_plain_view_is_the_chip_and_the_mirror_view_its_mirror_image(bench) -> None:
    chips = np.random.default_rng(0).integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(bench.view(chips), chips)
    np.testing.assert_array_equal(bench.view(chips, mirror=True), chips[:, :, ::-1])


def test_zoom_enlarges_about_the_centre_and_shift_moves_left_and_up(bench) -> None:
    chip = _dot_chip(10, 46)  # centre (11.5, 47.5): up and to the right of the chip's (31.5, 31.5)
    row, column = _centre(chip)
    zoomed_row, zoomed_column = _centre(bench.view(chip, zoom=1.05))
    assert zoomed_row == pytest.approx(31.5 + (row - 31.5) * 1.05, abs=0.1)
    assert zoomed_column == pytest.approx(31.5 + (column - 31.5) * 1.05, abs=0.1)
    # A shift of 0.04 of the half-side (32 px) is 1.28 px.
    shifted_row, shifted_column = _centre(bench.view(chip, shift=(0.04, 0.0)))
    assert (shifted_row, shifted_column) == (pytest.approx(row, abs=0.01), pytest.approx(column - 1.28, abs=0.05))
    shifted_row, shifted_column = _centre(bench.view(chip, shift=(0.0, 0.04)))
    assert (shifted_row, shifted_column) == (pytest.approx(row - 1.28, abs=0.05), pytest.approx(column, abs=0.01))


def test_every_view_set_names_views_that_exist_and_starts_as_shipped(bench) -> None:
    assert all(name in bench.VIEWS for names in bench.VIEW_SETS.values() for name in names)
    assert next(iter(bench.VIEW_SETS.values())) == ("chip", "mirror")
