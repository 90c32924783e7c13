"""`agedetect data prepare` and `agedetect data report` through Typer's CLI runner."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.cli import app

from shared_data import CHIPS as UTKFACE

runner = CliRunner()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    if not UTKFACE.is_dir():
        pytest.skip(f"UTKFace chips not found at {UTKFACE}")
    root = tmp_path_factory.mktemp("cli") / "src"
    root.mkdir()
    names = sorted(os.listdir(UTKFACE))
    for name in names[:: len(names) // 60][:60]:
        shutil.copy2(UTKFACE / name, root / name)
    shutil.copy2(UTKFACE / "39_1_20170116174525125.jpg.chip.jpg", root)
    (root / "notes.txt").write_text("hello")
    (root / "5_0_0_20170101000000001.jpg.chip.jpg").write_bytes(b"\xff\xd8 broken")
    return root


@pytest.fixture(scope="module")
def prepared(source) -> tuple[Path, dict]:
    out = source.parent / "out"
    result = runner.invoke(
        app, ["data", "prepare", str(source), "--out", str(out), "--workers", "1", "--json", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout


def test_prepare_json_shape(prepared):
    out, payload = prepared
    assert {"seen", "accepted", "rejected", "reasons", "splits", "malformed_names"} <= set(payload)
    assert payload["seen"] == 63 == payload["accepted"] + payload["rejected"]
    assert payload["reasons"] == {"malformed_name": 1, "not_an_image": 1, "unreadable_image": 1}
    assert sum(payload["splits"].values()) == payload["accepted"]
    assert set(payload["splits"]) == {"train", "val", "test"}
    assert [item["name"] for item in payload["malformed_names"]] == ["39_1_20170116174525125.jpg.chip.jpg"]
    assert payload["age_groups"]["labels"] == ["0-20", "21-26", "27-35", "36-50", "51+"]
    assert (out / "manifest.csv").is_file() and (out / "rejected.csv").is_file()


def test_prepare_human_summary_and_options(source, tmp_path):
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            str(source),
            "-o",
            str(tmp_path / "o"),
            "--workers",
            "1",
            "--split",
            "0.8,0.1,0.1",
            "--groups",
            "18,65",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "63 files seen" in result.stdout and "0-17, 18-64, 65+" in result.stdout
    settings = json.loads((tmp_path / "o" / "prepare.json").read_text())
    assert settings["split"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert settings["age_groups"]["edges"] == [18, 65]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--split", "0.5,0.5"], "split"),
        (["--groups", "30,20"], "increasing"),
        (["--groups", "21", "--balanced-groups", "4"], "not both"),
        (["--balanced-groups", "1"], "balanced_groups"),
    ],
)
def test_prepare_bad_options_exit_2_without_traceback(source, tmp_path, extra, message):
    result = runner.invoke(app, ["data", "prepare", str(source), "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_prepare_missing_source_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stdout == ""
    assert "no such file or folder" in " ".join(result.stderr.split())  # Rich wraps long lines


def test_report_writes_plots_and_summary(prepared, tmp_path):
    out, payload = prepared
    result = runner.invoke(app, ["data", "report", str(out), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert f"accepted {payload['accepted']}" in result.stdout and "train" in result.stdout
    for name in ("age_histogram.png", "age_groups_by_split.png", "gender_race.png"):
        path = tmp_path / "r" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            assert image.width >= 800 and image.height >= 400
    assert (tmp_path / "r" / "report.txt").read_text() == result.stdout


def test_report_json_and_default_folder(prepared):
    out, payload = prepared
    result = runner.invoke(app, ["data", "report", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == payload["accepted"] and summary["splits"] == payload["splits"]
    assert all(Path(p).parent == out / "report" and Path(p).is_file() for p in summary["plots"])


def test_report_on_a_folder_without_manifest(tmp_path):
    result = runner.invoke(app, ["data", "report", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.csv" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []  # nothing written on failure
