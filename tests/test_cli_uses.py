"""`agedetect screen`, `gap` and `audience` through Typer's CLI runner, on real photos,
UTKFace chips pasted on a canvas, a photo without a face and a corrupt file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.cli import app
from agedetect.inference import DEFAULT_MODEL
from agedetect.uses import DEFAULT_MAX_MINOR_RISK
from model_copies import model_without_typical_error
from shared_data import needs_data
from uses_support import (
    CHILD,
    COUPLE,
    NO_FACE,
    OLD,
    ONE_FACE,
    corrupt_jpeg,
    save_pasted,
)

pytestmark = needs_data

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uses")
    return {
        "model": DEFAULT_MODEL,  # its sidecar has the typical_error table gap needs
        "child": save_pasted(folder / "child.jpg", CHILD),
        "old": save_pasted(folder / "old.jpg", OLD),
        "both": save_pasted(folder / "both.jpg", CHILD, OLD),
        "corrupt": corrupt_jpeg(folder / "corrupt.jpg"),
    }


def run(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# ============================================================================ screen


@pytest.mark.parametrize("photo, decision", [("child", "refer"), ("old", "pass"), ("both", "refer")])
def test_screen_json_on_pasted_faces_of_known_age(files: dict, photo: str, decision: str) -> None:
    code, out, _ = run("screen", files[photo], "--min-age", 18, "--buffer", 7, "--json")
    assert code == {"pass": 0, "refer": 3}[decision]  # a script can act on the exit code
    body = json.loads(out)
    assert set(body) == {"file", "decision", "message", "policy", "faces"}
    assert body["decision"] == decision and body["file"] == str(files[photo])
    assert body["policy"] == {"min_age": 18, "buffer": 7, "threshold": 25, "basis": "estimate",
                              "max_minor_risk": DEFAULT_MAX_MINOR_RISK}
    for face in body["faces"]:
        assert set(face) == {"face", "box", "age", "age_years", "age_interval", "decision", "reason"}
        if face["age"] < 25:  # at or over 25 a face may still be referred by the risk cap
            assert face["decision"] == "refer"


def test_screen_table_and_strict_basis(files: dict) -> None:
    code, out, err = run("screen", COUPLE)
    assert code in (0, 3) and ("PASS" in out or "REFER" in out) and "80% range" in out and err == ""
    code, out, _ = run("screen", COUPLE, "--buffer", 70, "--basis", "interval_low", "--json")
    assert code == 3 and json.loads(out)["decision"] == "refer"


def test_screen_no_face_refers_and_bad_input_is_one_line(files: dict) -> None:
    code, out, _ = run("screen", NO_FACE, "--json")
    assert code == 3 and json.loads(out)["decision"] == "refer" and json.loads(out)["faces"] == []
    code, out, err = run("screen", files["corrupt"])
    assert code == 2 and out == "" and "corrupt or truncated" in err and "Traceback" not in err
    code, _, err = run("screen", files["old"], "--basis", "median")
    assert code == 2 and "median" in err
    code, _, err = run("screen", files["old"], "--min-age", 60, "--buffer", 50)
    assert code == 2 and "at most 100" in err


def test_max_risk_caps_the_pass_and_one_or_more_turns_the_cap_off() -> None:
    """At min_age = the estimate rounded down and no buffer, the estimate passes but the model
    gives the face a large chance of being under min_age: the default cap refers it;
    --max-risk 1 turns the cap off (the policy shows none) and it passes."""
    from agedetect import AgeEstimator

    age = AgeEstimator().predict(ONE_FACE)[0].age
    policy = ["--min-age", math.floor(age), "--buffer", 0, "--json"]
    capped = json.loads(run("screen", ONE_FACE, *policy)[1])
    assert capped["decision"] == "refer" and capped["policy"]["max_minor_risk"] == DEFAULT_MAX_MINOR_RISK
    off = json.loads(run("screen", ONE_FACE, *policy, "--max-risk", 1)[1])
    assert off["decision"] == "pass" and off["policy"]["max_minor_risk"] is None
    almost_off = json.loads(run("screen", ONE_FACE, *policy, "--max-risk", 0.999)[1])
    assert almost_off["policy"]["max_minor_risk"] == 0.999  # under 1 the cap stays, however loose
    code, _, err = run("screen", ONE_FACE, "--max-risk", 1.5)
    assert code == 2 and "--max-risk" in err


# ============================================================================ gap


def test_gap_json(files: dict) -> None:
    code, out, _ = run("gap", files["old"], "--age", 72, "--model", files["model"], "--json")
    assert code == 0
    body = json.loads(out)
    for key in ("file", "estimated_age", "gap", "typical_error", "unusual", "message", "stated_age", "unusual_above"):
        assert key in body
    assert body["stated_age"] == 72 and body["typical_error_band"] == "71+"
    assert body["gap"] == pytest.approx(body["estimated_age"] - 72, abs=0.02)
    assert body["unusual"] == (abs(body["gap"]) > body["unusual_above"])

    code, out, _ = run("gap", files["child"], "--age", 45, "--model", files["model"], "--json", "--context", "profile")
    body = json.loads(out)
    assert code == 0 and body["unusual"] is True and body["looks"] == "younger" and "photo" in body["message"]


def test_gap_text_and_failures(files: dict, tmp_path: Path) -> None:
    code, out, err = run("gap", COUPLE, "--age", 40, "--model", files["model"])
    assert code == 0 and "face 1 of 2 (the largest): estimated age" in out and "stated 40" in out
    assert "2 faces found; --face N compares another" in err
    code, out, _ = run("gap", COUPLE, "--age", 40, "--face", 2, "--model", files["model"], "--json")
    assert code == 0 and (json.loads(out)["face"], json.loads(out)["faces"]) == (2, 2)
    code, out, err = run("gap", COUPLE, "--age", 40, "--face", 3, "--model", files["model"])
    assert code == 2 and out == "" and "has 2 faces, numbered 1 (the largest) to 2; there is no face 3" in err
    code, out, err = run("gap", NO_FACE, "--age", 30, "--model", files["model"])
    assert code == 2 and out == "" and "no face found" in err
    code, _, err = run("gap", files["corrupt"], "--age", 30, "--model", files["model"])
    assert code == 2 and "corrupt or truncated" in err
    code, _, err = run("gap", ONE_FACE, "--age", 30, "--model", model_without_typical_error(tmp_path / "bare"))
    assert code == 2 and "no typical_error" in err
    code, _, err = run("gap", ONE_FACE, "--age", 200)
    assert code == 2 and "--age" in err
    code, _, err = run("gap", ONE_FACE)
    assert code == 2 and "--age" in err


# ============================================================================ audience


@pytest.fixture(scope="module")
def audience_run(files: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("child", "old", "both", "corrupt"):
        (folder / files[name].name).write_bytes(files[name].read_bytes())
    (folder / "scene.jpg").write_bytes(NO_FACE.read_bytes())
    out = tmp_path_factory.mktemp("audience")
    code, stdout, stderr = run(
        "audience", folder, COUPLE, folder / "missing.jpg", "--out", out, "--json", "--workers", 2
    )
    assert code == 0, stderr
    return json.loads(stdout), out


def test_audience_json_accounts_for_every_input(audience_run: tuple[dict, Path]) -> None:
    body, _ = audience_run
    # both(2) + child(1) + old(1) + couple(2) faces; corrupt and missing fail; the scene has none.
    assert (body["images"], body["processed"], body["failed"]) == (7, 5, 2)
    assert body["faces"] == 6 and body["no_face_images"] == 1 and body["with_faces"] == 4
    assert body["failed_reasons"] == {"unreadable_image": 2}
    assert list(body["groups"]) == ["0-20", "21-26", "27-35", "36-50", "51+"]
    assert sum(body["groups"].values()) == 6 and body["groups"]["0-20"] >= 2  # the two pasted children
    assert sum(body["shares"].values()) == pytest.approx(1, abs=1e-3)


def test_audience_writes_csvs_chart_and_page(audience_run: tuple[dict, Path]) -> None:
    body, out = audience_run
    with open(out / "faces.csv", newline="") as handle:
        faces = list(csv.DictReader(handle))
    assert len(faces) == body["faces"]
    assert {"file", "face", "x1", "y1", "x2", "y2", "age", "age_years", "age_low", "age_high", "age_group"} <= set(faces[0])
    assert sorted({r["face"] for r in faces}) == ["1", "2"]  # faces numbered from 1, as everywhere
    assert sum(row["age_group"] == "0-20" for row in faces) == body["groups"]["0-20"]
    assert all(float(r["age_low"]) <= float(r["age"]) <= float(r["age_high"]) for r in faces)
    with open(out / "failures.csv", newline="") as handle:
        failures = list(csv.DictReader(handle))
    # Every input without a face is named here: the unreadable ones and the scene with no face.
    assert sorted((Path(r["file"]).name, r["reason"]) for r in failures) == [
        ("corrupt.jpg", "unreadable_image"), ("missing.jpg", "unreadable_image"), ("scene.jpg", "no_face")]
    with Image.open(out / "groups.png") as chart:
        assert chart.format == "PNG" and chart.width > 300
    page = (out / "index.html").read_text()
    assert f"<b>{body['faces']}</b> faces" in page and 'src="groups.png"' in page and "missing.jpg" in page


def test_audience_table_on_one_worker(files: dict, tmp_path: Path) -> None:
    code, out, err = run("audience", files["old"], files["corrupt"], NO_FACE, "--out", tmp_path, "--workers", 1)
    assert code == 0 and "1 faces in 1 of 3 images" in out  # the table is the result: stdout
    assert "1 with no face and 1 could not be read" in err and "index.html" in err
