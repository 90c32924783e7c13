"""`agedetect evaluate`: metrics on hand-computed cases, and real runs on labelled inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.cli import app
from agedetect.evaluate import compute_metrics
from agedetect.labels import AgeGroups, parse_utkface_name
from shared_data import CHIPS, NO_FACES, needs_chips, needs_photos

runner = CliRunner()


def one_hot(ages: list[int]) -> np.ndarray:
    probs = np.zeros((len(ages), 101))
    probs[np.arange(len(ages)), ages] = 1.0
    return probs


def test_metrics_by_hand():
    # true 10, 22, 30, 60; predicted 12, 30, 30, 40 -> errors 2, 8, 0, 20
    m = compute_metrics(np.array([10, 22, 30, 60]), one_hot([12, 30, 30, 40]), AgeGroups.default(),
                        genders=[0, 1, 0, 1], races=[0, 0, 2, None], failed={"no_face_found": 2})
    assert m["n"] == 4 and m["mae"] == 7.5 and m["cs5"] == 0.5
    # groups: 0-20 -> 0-20 (right), 21-26 -> 27-35, 27-35 -> 27-35 (right), 51+ -> 36-50
    assert m["group_accuracy"] == 0.5
    assert m["confusion_matrix"][1][2] == 1 and m["confusion_matrix"][4][3] == 1
    assert m["failed"] == 2 and m["failed_reasons"] == {"no_face_found": 2}
    assert m["mae_by_age_band"]["0-12"] == {"n": 1, "mae": 2.0, "p90_error": 2.0, "bias": 2.0}
    # bias keeps the sign: 60 estimated 40 is 20 years too young
    assert m["mae_by_age_band"]["51-70"]["mae"] == 20.0 and m["mae_by_age_band"]["51-70"]["bias"] == -20.0
    assert m["bias"] == (2 + 8 + 0 - 20) / 4
    assert m["mae_by_gender"]["male"]["mae"] == 1.0 and m["mae_by_gender"]["female"]["mae"] == 14.0
    assert m["mae_by_race_label"]["unknown"]["n"] == 1
    # one-hot predictions: the interval is the age itself, so it covers only exact hits
    assert m["interval_coverage"] == 0.25


def test_no_scored_input_still_reports_the_failures():
    m = compute_metrics(np.zeros(0), np.zeros((0, 101)), AgeGroups.default(), failed={"unreadable_image": 1})
    assert m["n"] == 0 and m["mae"] is None and m["failed"] == 1


@needs_chips
@needs_photos
def test_labels_csv_with_photos_a_broken_file_and_no_face(tmp_path):
    """Whole photos (chips pasted on a larger canvas, so detection and alignment run),
    one unreadable file and one photo without a face: all six inputs accounted for."""
    names = sorted(p.name for p in CHIPS.iterdir() if p.name.endswith(".chip.jpg"))[::997][:4]
    rows = ["path,age,gender,race"]
    for index, name in enumerate(names):
        label = parse_utkface_name(name)
        canvas = Image.new("RGB", (480, 400), (200, 200, 205))
        canvas.paste(Image.open(CHIPS / name).convert("RGB"), (140, 100))
        canvas.save(tmp_path / f"photo{index}.jpg", quality=95)
        rows.append(f"photo{index}.jpg,{label.age},{label.gender},{label.race}")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append("broken.jpg,30,,")
    scene = sorted(NO_FACES.iterdir())[0]
    shutil.copyfile(scene, tmp_path / "scene.jpg")
    rows.append("scene.jpg,40,,")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")

    result = runner.invoke(app, ["evaluate", "--labels", str(tmp_path / "labels.csv"), "--json",
                                 "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["seen"] == 6 and metrics["n"] + metrics["failed"] == 6
    assert metrics["failed_reasons"].get("unreadable_image") == 1
    assert metrics["failed_reasons"].get("no_face_found", 0) >= 1
    assert metrics["n"] >= 3 and 0 <= metrics["mae"] < 20
    for name in ("index.html", "confusion_matrix.png", "predicted_vs_true.png", "error_by_group.png", "failures.csv"):
        assert (tmp_path / "report" / name).is_file()


@needs_chips
def test_folder_of_chips_with_a_malformed_name(tmp_path):
    names = sorted(p.name for p in CHIPS.iterdir() if p.name.endswith(".chip.jpg"))[::500][:30]
    for name in names:
        shutil.copyfile(CHIPS / name, tmp_path / name)
    shutil.copyfile(CHIPS / names[0], tmp_path / "61_1_20170109142408075.jpg.chip.jpg")  # a field missing
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--json", "--min-age", "18", "--buffer", "7"])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == len(names) and metrics["failed_reasons"] == {"malformed_name": 1}
    assert metrics["mae"] < 10 and set(metrics["screening"]) >= {"minors_passed", "teens_passed", "adults_referred"}


def test_missing_labels_file_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["evaluate", "--labels", str(tmp_path / "nope.csv"), "--json"])
    assert result.exit_code == 2 and "nope.csv" in result.stderr and "Traceback" not in result.stderr


@needs_chips
def test_labels_csv_rows_without_a_usable_label_are_counted_with_their_reason(tmp_path):
    """`evaluate --labels` reads the CSV as `data prepare` does: a bad age or gender is a
    failure with its reason, and gender may be a word."""
    name = sorted(p.name for p in CHIPS.iterdir() if p.name.endswith(".chip.jpg"))[0]
    shutil.copyfile(CHIPS / name, tmp_path / "face.jpg")
    age = parse_utkface_name(name).age
    (tmp_path / "labels.csv").write_text(
        f"path,age,gender\nface.jpg,{age},female\nface.jpg,thirty,\nface.jpg,{age},robot\n")
    result = runner.invoke(app, ["evaluate", "--labels", str(tmp_path / "labels.csv"), "--aligned", "--json"])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["seen"] == 3 and metrics["n"] == 1
    assert metrics["failed_reasons"] == {"bad_age_label": 1, "bad_gender": 1}
    assert metrics["mae_by_gender"]["female"]["n"] == 1
