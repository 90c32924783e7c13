"""What the command line prints and where, and how it exits: file names verbatim, results
on stdout and messages on stderr, documented exit codes, faces numbered from 1 everywhere,
commands that work on the serving install (no PyTorch, no matplotlib), --version."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect import __version__
from agedetect.cli import app
from agedetect.cli.models import registered_models
from agedetect.cli.predict import FACE_COLORS

from shared_data import CHIPS, NO_FACES, PEOPLE, ROOT, needs_chips, needs_photos



def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small copies under names that look like Rich markup."""
    folder = tmp_path_factory.mktemp("names")
    couple = Image.open(PEOPLE / "couple.jpg").convert("RGB")
    couple.thumbnail((900, 900))
    paths = {"couple": folder / "party[red].jpg", "scene": folder / "[bold]scene.jpg"}
    couple.save(paths["couple"], quality=92)
    shutil.copy(NO_FACES / "114740.jpg", paths["scene"])
    (folder / "b").mkdir()
    paths["twin"] = folder / "b" / "party[red].jpg"  # the same name in another folder
    couple.save(paths["twin"], quality=92)
    return paths


# ---------------------------------------------------------------- 10: names verbatim


@needs_photos
def test_file_names_are_printed_verbatim(photos: dict[str, Path], tmp_path: Path) -> None:
    code, out, _ = run("predict", photos["couple"], photos["scene"], "-w", 1)
    assert code == 0
    assert str(photos["couple"]) in out and str(photos["scene"]) in out  # not "party.jpg", not "scene.jpg"
    out_dir = tmp_path / "out[x]"
    code, _, err = run("predict", photos["couple"], photos["twin"], "--annotate", out_dir, "-w", 1)
    assert code == 0 and f"annotated copies in {out_dir}" in err
    code, out, err = run("audience", photos["couple"], photos["scene"], "--out", out_dir, "--workers", 1)
    assert code == 0 and f"report: {out_dir / 'index.html'}" in err


# ---------------------------------------------------------------- 11, 12, 20: the serving install


def test_models_list_without_pytorch() -> None:
    """`agedetect models` on an install without PyTorch (torch blocked from importing)."""
    script = "import sys; sys.modules['torch'] = None; from agedetect.cli import app; app(['models'])"
    listing = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["cnn", "dense", "descriptor", "descriptor_levels", "final", "transfer"]
    script = "import sys; sys.modules['torch'] = None; from agedetect.cli import app; app(['train', '--model', 'cnn', '--data', 'x', '--out', 'y'])"
    training = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert training.returncode == 2 and "pip install 'agedetect[train]'" in training.stderr


def test_the_listing_is_the_registry() -> None:
    pytest.importorskip("torch")
    from agedetect import models

    assert [name for name, _ in registered_models()] == models.list_models()
    assert all(doc for _, doc in registered_models())


@needs_photos
def test_audience_without_matplotlib_writes_the_rest(photos: dict[str, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on the serving install
    code, out, err = run("audience", photos["couple"], "--out", tmp_path, "--workers", 1, "--json")
    assert code == 0 and json.loads(out)["faces"] == 2
    assert "no chart drawn (groups.png): it needs matplotlib: pip install 'agedetect[report]'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.csv", "failures.csv", "index.html"]
    assert "No chart" in (tmp_path / "index.html").read_text()


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"agedetect {__version__}"


# ---------------------------------------------------------------- 13, 14: evaluate


def test_evaluate_a_missing_path_is_an_error(tmp_path: Path) -> None:
    code, out, err = run("evaluate", tmp_path / "no-such-folder")
    assert code == 2 and out == "" and "no such file or folder" in err


@needs_photos
def test_evaluate_names_unlabelled_photos(tmp_path: Path) -> None:
    for name in ("img1.jpg", "img2.jpg"):
        shutil.copy(PEOPLE / name, tmp_path / name)
    code, out, err = run("evaluate", tmp_path)
    assert code == 2 and out == "" and "none of its 2 images has an age label" in err


@needs_chips
def test_evaluate_counts_unlabelled_photos_and_prints_its_table_on_stdout(tmp_path: Path) -> None:
    chip = sorted(CHIPS.glob("*.chip.jpg"))[0]
    shutil.copy(chip, tmp_path / chip.name)
    shutil.copy(chip, tmp_path / "holiday.jpg")
    code, out, err = run("evaluate", tmp_path, "--json")
    assert code == 0 and json.loads(out)["failed_reasons"] == {"unlabelled": 1}
    code, out, err = run("evaluate", tmp_path)
    assert code == 0 and "evaluation" in out and "unlabelled" in out and "evaluation" not in err
    assert "1 image had no age label in the name" in err


# ---------------------------------------------------------------- 14, 15, 16: screen


@needs_photos
def test_screen_prints_its_result_on_stdout_and_exits_by_decision(photos: dict[str, Path]) -> None:
    code, out, err = run("screen", photos["couple"])
    assert code == 0 and out.splitlines()[-1].startswith("PASS") and err == ""
    rows = [line.split() for line in out.splitlines() if re.match(r"^\W*[12]\W", line)]
    assert [row[1] for row in rows] == ["1", "2"]  # faces numbered from 1, as in JSON and on the page
    code, out, _ = run("screen", photos["couple"], "--buffer", 70)
    assert code == 3 and "REFER" in out and "is under 88" in out
    code, out, _ = run("screen", photos["scene"])
    assert code == 3 and "No face found" in out


# ---------------------------------------------------------------- 15: predict's exit code


def test_predict_exits_non_zero_when_nothing_could_be_read(tmp_path: Path) -> None:
    code, out, err = run("predict", tmp_path / "missing.jpg", "-w", 1)
    assert code == 2 and "no such file" in out and "no input could be read" in err
    (tmp_path / "notes.jpg").write_text("not a photo")
    code, _, _ = run("predict", tmp_path / "notes.jpg", tmp_path / "missing.jpg", "-f", "json", "-w", 1)
    assert code == 2


@needs_photos
def test_predict_of_a_photo_without_a_face_is_not_an_error(photos: dict[str, Path]) -> None:
    code, out, _ = run("predict", photos["scene"], "-f", "json", "-w", 1)
    assert code == 0 and json.loads(out)[0]["error"] == "no face found"


# ---------------------------------------------------------------- 18: annotated copies


@needs_photos
def test_annotate_draws_numbers_in_each_faces_colour_and_names_renamed_copies(
        photos: dict[str, Path], tmp_path: Path) -> None:
    code, out, err = run("predict", photos["couple"], photos["twin"], "--annotate", tmp_path, "-f", "json", "-w", 1)
    assert code == 0
    assert f"annotated copy of {photos['twin']} -> {tmp_path / 'party[red]-2.jpg'}" in err
    rows = [r for r in json.loads(out) if r["file"] == str(photos["couple"])]
    with Image.open(tmp_path / "party[red].jpg") as drawn:
        rgb = drawn.convert("RGB")
        for row in rows:
            x1, y1, _, y2 = row["box"]
            colour = tuple(int(FACE_COLORS[row["face"] - 1][i: i + 2], 16) for i in (1, 3, 5))
            pixel = rgb.getpixel((round(x1) + 2, round((y1 + y2) / 2)))  # inside the 4 px outline
            assert max(abs(a - b) for a, b in zip(pixel, colour)) < 40, (row["face"], pixel, colour)


def test_the_page_and_the_command_line_share_one_palette() -> None:
    script = (ROOT / "src" / "agedetect" / "web" / "static" / "app.js").read_text()
    colours = re.search(r"COLORS = \[([^\]]*)\]", script).group(1)  # type: ignore[union-attr]
    assert tuple(re.findall(r'"(#[0-9a-f]{6})"', colours)) == FACE_COLORS


# ---------------------------------------------------------------- 17: the CSV header


@needs_photos
def test_csv_carries_group_probabilities(photos: dict[str, Path]) -> None:
    code, out, _ = run("predict", photos["couple"], "-f", "csv", "-w", 1)
    rows = list(csv.DictReader(out.splitlines()))
    assert code == 0 and [r["face"] for r in rows] == ["1", "2"]
    assert all(0 < float(r["score"]) <= 1 and r["p_27-35"] for r in rows)
