"""``agedetect predict`` on a folder mixing photos, a faceless scene and broken files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.cli import app
from agedetect.files import find_images

from shared_data import CHIPS, NO_FACES, PEOPLE, SHARED, needs_chips, needs_photos  # noqa: E402,F401

# What the web API carries for a face, with the file and the face's number.
KEYS = {"file", "face", "box", "score", "age", "age_years", "age_interval", "age_group", "group_probabilities",
        "landmarks", "error"}


def small_copy(source: Path, target: Path, side: int = 900) -> None:
    """A downscaled copy (the test needs the faces, not the megapixels)."""
    picture = Image.open(source).convert("RGB")
    picture.thumbnail((side, side))
    picture.save(target, quality=92)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """couple (2 faces), a portrait in a sub-folder, a scene with no face, a truncated
    JPEG, text named .jpg, and a .txt file (not an image name, so not searched)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    small_copy(PEOPLE / "couple.jpg", root / "couple.jpg")
    small_copy(PEOPLE / "img1.jpg", root / "sub" / "portrait.jpg")
    shutil.copy(NO_FACES / "114740.jpg", root / "scene.jpg")
    data = (root / "couple.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "notes.jpg").write_text("not a photo")
    (root / "readme.txt").write_text("ignored")
    return root


def run(*args: str):
    result = CliRunner().invoke(app, ["predict", *args])
    return result


@needs_photos
def test_json_has_a_row_per_face_and_per_failed_file(folder: Path) -> None:
    result = run(str(folder), "--format", "json", "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert all(set(row) == KEYS for row in rows)
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(Path(row["file"]).name, []).append(row)
    assert set(by_file) == {"couple.jpg", "portrait.jpg", "scene.jpg", "truncated.jpg", "notes.jpg"}
    couple = by_file["couple.jpg"]
    assert [r["face"] for r in couple] == [1, 2] and all(r["error"] is None for r in couple)
    for row in couple + by_file["portrait.jpg"]:
        low, high = row["age_interval"]
        assert low <= row["age"] <= high and len(row["box"]) == 4 and row["age_group"]
        assert 0 < row["score"] <= 1 and len(row["landmarks"]) == 5
        assert sum(row["group_probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert by_file["scene.jpg"] == [dict.fromkeys(KEYS) | {"file": str(folder / "scene.jpg"), "error": "no face found"}]
    assert "corrupt or truncated" in by_file["truncated.jpg"][0]["error"]
    assert "not an image format" in by_file["notes.jpg"][0]["error"]
    assert by_file["notes.jpg"][0]["age"] is None
    # Counts reconcile on stderr: 5 images, 2 with faces.
    assert "5 images: 2 with faces (3 faces), 1 without a face, 2 could not be read" in result.stderr


@needs_photos
def test_two_workers_give_the_same_rows_as_one(folder: Path) -> None:
    one = run(str(folder), "-f", "json", "-w", "1")
    two = run(str(folder), "-f", "json", "-w", "2")
    assert one.exit_code == two.exit_code == 0, two.output
    assert json.loads(one.stdout) == json.loads(two.stdout)


@needs_photos
def test_csv_and_table(folder: Path) -> None:
    result = run(str(folder / "couple.jpg"), str(folder / "scene.jpg"), "--format", "csv", "-w", "1")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    groups = ["0-20", "21-26", "27-35", "36-50", "51+"]
    assert list(rows[0]) == ["file", "face", "x1", "y1", "x2", "y2", "score", "age", "age_years", "age_low",
                             "age_high", "age_group", "error", *(f"p_{g}" for g in groups)]
    assert [(Path(r["file"]).name, r["face"], r["error"]) for r in rows] == [
        ("couple.jpg", "1", ""), ("couple.jpg", "2", ""), ("scene.jpg", "", "no face found")]
    assert float(rows[0]["age_low"]) <= float(rows[0]["age"]) <= float(rows[0]["age_high"])
    assert sum(float(rows[0][f"p_{g}"]) for g in groups) == pytest.approx(1, abs=1e-3) and rows[2]["p_51+"] == ""

    table = run(str(folder / "couple.jpg"), "-w", "1")
    assert table.exit_code == 0
    ages = [str(r["age_years"]) for r in json.loads(run(str(folder / "couple.jpg"), "-f", "json", "-w", "1").stdout)]
    assert all(f" {age} " in table.stdout for age in ages)


@needs_photos
def test_globs_and_missing_paths_are_rows_too(folder: Path) -> None:
    result = run(str(folder / "*.jpg"), str(folder / "missing.jpg"), str(folder / "nothing-*.png"), "-f", "json",
                 "-w", "1")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = [Path(r["file"]).name for r in rows]
    assert "portrait.jpg" not in names  # a one-level glob does not descend
    errors = {Path(r["file"]).name: r["error"] for r in rows if r["error"]}
    assert errors["missing.jpg"] == "no such file" and errors["nothing-*.png"] == "no such file"


@needs_photos
def test_annotate_draws_on_copies(folder: Path, tmp_path: Path) -> None:
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}
    out = tmp_path / "annotated"
    result = run(str(folder), "--annotate", str(out), "-f", "json", "-w", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["couple.jpg", "portrait.jpg"]
    drawn = Image.open(out / "couple.jpg")
    assert drawn.size == Image.open(folder / "couple.jpg").size
    # The inputs are untouched, and the ages did not change from drawing.
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}
    plain = json.loads(run(str(folder), "-f", "json", "-w", "1").stdout)
    assert json.loads(result.stdout) == plain


@needs_chips
def test_aligned_chips_skip_detection(tmp_path: Path) -> None:
    names = sorted(p.name for p in CHIPS.glob("*.chip.jpg"))[::2000]
    for name in names:
        shutil.copy(CHIPS / name, tmp_path / name)
    Image.new("RGB", (120, 80)).save(tmp_path / "wide.jpg")
    result = run(str(tmp_path), "--aligned", "-f", "json", "-w", "1")
    assert result.exit_code == 0, result.output
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert "not square" in rows.pop("wide.jpg")["error"]
    assert set(rows) == set(names)
    for name, row in rows.items():
        assert row["box"] == [0.0, 0.0, 200.0, 200.0] and row["error"] is None
        assert abs(row["age"] - int(name.split("_")[0])) < 30


def test_bad_options_and_models_are_one_line_errors(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (50, 50)).save(image)
    bad_format = run(str(image), "--format", "xml")
    assert bad_format.exit_code == 2 and "table" in bad_format.output and "json" in bad_format.output
    bad_model = run(str(image), "--model", str(tmp_path / "none.onnx"))
    assert bad_model.exit_code == 2
    assert "age model not found" in bad_model.stderr and "Traceback" not in bad_model.output


def test_find_images(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ("a/1.JPG", "a/b/2.png", "a/b/3.webp", "a/notes.txt", ".hidden/4.jpg", "a/.5.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found = find_images([tmp_path / "a", tmp_path / "a" / "1.JPG", tmp_path / "a" / "notes.txt"])
    # Folders by extension, recursively, sorted, hidden skipped; named files always; no duplicates.
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/1.JPG", "a/b/2.png", "a/b/3.webp", "a/notes.txt"]
    assert [p.name for p in find_images([str(tmp_path / "**" / "*.png")])] == ["2.png"]
