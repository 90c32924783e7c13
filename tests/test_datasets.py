"""Several datasets in one `data prepare`: UTKFace names, All-Age-Faces names, labels CSVs;
the manifest's dataset column, splits drawn per dataset, and evaluation per dataset."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter

import pytest
from typer.testing import CliRunner

from agedetect.cli import app
from agedetect.data import load_manifest, prepare
from agedetect.datasets import FaceLabel, read_aaf_name, read_labels_csv, read_name
from agedetect.labels import LabelError

from shared_data import AAF, CHIPS, copy_sample, needs_aaf, needs_chips

runner = CliRunner()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("00000A02.webp", FaceLabel("aaf", 2, 1, None, "aaf:00000", False)),
        ("07380A80.webp", FaceLabel("aaf", 80, 1, None, "aaf:07380", False)),  # the last woman
        ("07381A21.jpg", FaceLabel("aaf", 21, 0, None, "aaf:07381", False)),  # the first man
        ("13321A35.PNG", FaceLabel("aaf", 35, 0, None, "aaf:13321", False)),
        ("26_1_2_20170116174525125.jpg.chip.jpg", FaceLabel("utkface", 26, 1, 2, "20170116174525125", True)),
        ("28_1_2_201701161846515488.jpg", FaceLabel("utkface", 28, 1, 2, "20170116184651548", False,
                                                    "datetime has 18 digits, not 17")),
        ("0000A02.webp", "malformed_name"),  # four digits: neither AAF nor UTKFace
        ("00000A2.webp", "malformed_name"),
        ("00000A02.gif", "malformed_name"),
        ("61_1_20170109142408075.jpg.chip.jpg", "malformed_name"),
    ],
)
def test_read_name(name, expected):
    if isinstance(expected, str):
        with pytest.raises(LabelError) as caught:
            read_name(name)
        assert caught.value.reason == expected
    else:
        assert read_name(name) == expected


def test_read_aaf_name_names_the_form():
    with pytest.raises(LabelError, match="NNNNNAyy"):
        read_aaf_name("face.webp")


def test_labels_csv_rows(tmp_path):
    (tmp_path / "Family.csv").write_text(
        "Path,Age,Gender\n"
        "a.jpg,7,female\n"
        "b.jpg,15.0,M\n"
        "c.jpg,40,\n"
        "d.jpg,forty,1\n"
        "e.jpg,-3,1\n"
        "f.jpg,30,other\n"
        ",30,1\n"
    )
    rows = read_labels_csv(tmp_path / "Family.csv")
    assert [row.line for row in rows] == [2, 3, 4, 5, 6, 7, 8]
    good = [row.label for row in rows[:3]]
    assert [(l.dataset, l.age, l.gender, l.race) for l in good] == [
        ("family", 7, 1, None), ("family", 15, 0, None), ("family", 40, None, None)
    ]
    assert rows[0].path == (tmp_path / "a.jpg").resolve() and good[0].photo == "family:a.jpg"
    assert [row.reason for row in rows[3:]] == ["bad_age_label", "bad_age_label", "bad_gender", "malformed_name"]
    assert "Family.csv line 5" in rows[3].detail and "'forty'" in rows[3].detail


def test_labels_csv_without_columns_is_a_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("file,years\na.jpg,3\n")
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "x.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "needs the columns path and age" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """UTKFace chips, All-Age-Faces photos and a labels CSV of more AAF photos under other
    names, prepared in one run."""
    if not (AAF.is_dir() and CHIPS.is_dir()):
        pytest.skip("../shared UTKFace or All-Age-Faces not present")
    root = tmp_path_factory.mktemp("mixed")
    utk, aaf, web = root / "utk", root / "aaf", root / "web"
    copy_sample(CHIPS, utk, 400, 40)
    copy_sample(AAF, aaf, 300, 30)
    web.mkdir()
    rows = []
    for index, name in enumerate(sorted(os.listdir(AAF))[7::500][:12]):
        shutil.copy2(AAF / name, web / f"photo {index}.webp")  # a space: names are taken verbatim
        rows.append([f"photo {index}.webp", int(name[6:8]), "f" if int(name[:5]) <= 7380 else "m"])
    rows.append(["missing.jpg", 30, ""])
    rows.append(["photo 0.webp", "n/a", ""])  # the same file again, unlabelled: rejected on its own line
    with open(web / "web.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "age", "gender"])
        writer.writerows(rows)
    out = root / "out"
    result = runner.invoke(
        app, ["data", "prepare", str(utk), str(aaf), str(web / "web.csv"), "--out", str(out), "--json", "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


@needs_aaf
@needs_chips
def test_every_input_is_counted_with_its_dataset(mixed):
    out, payload = mixed
    # 40 chips + 30 AAF photos + 14 CSV rows; the CSV itself is read, not counted as a face
    assert payload["seen"] == 84 == payload["accepted"] + payload["rejected"]
    assert payload["reasons"].get("bad_age_label") == 1 and payload["reasons"].get("unreadable_file") == 1
    rejected = list(csv.DictReader(open(out / "rejected.csv")))
    missing = next(row for row in rejected if row["reason"] == "unreadable_file")
    assert missing["source"].endswith("missing.jpg") and "no such file" in missing["detail"]
    rows = load_manifest(out)
    by_dataset = Counter(row.dataset for row in rows)
    assert set(by_dataset) == {"utkface", "aaf", "web"}
    assert by_dataset["utkface"] == 40 and by_dataset["aaf"] + payload["reasons"].get("no_face_found", 0) >= 30 - 1
    assert {name: sum(counts.values()) for name, counts in payload["datasets"].items()} == dict(by_dataset)
    aaf_rows = [row for row in rows if row.dataset == "aaf"]
    assert all(row.race is None and row.gender in (0, 1) and row.n_faces >= 1 for row in aaf_rows)
    assert all(row.path.parent.name == "aaf" and row.path.suffix == ".jpg" for row in aaf_rows)
    web_rows = [row for row in rows if row.dataset == "web"]
    assert web_rows and all(row.source.startswith(str(out.parent / "web" / "photo ")) for row in web_rows)


@needs_aaf
@needs_chips
def test_splits_are_drawn_per_dataset(mixed):
    out, payload = mixed
    rows = load_manifest(out)
    for dataset in ("utkface", "aaf"):
        counts = Counter(row.split for row in rows if row.dataset == dataset)
        total = sum(counts.values())
        # each dataset on its own gets about 70/15/15, not whatever the pooled draw left it
        assert abs(counts["train"] / total - 0.7) < 0.15 and counts["val"] and counts["test"]
    photos: dict[str, set] = {}
    for row in rows:
        photos.setdefault(row.photo, set()).add(row.split)
    assert all(len(splits) == 1 for splits in photos.values())


@needs_aaf
@needs_chips
def test_adding_a_dataset_leaves_the_utkface_split_alone(mixed, tmp_path):
    out, _ = mixed
    alone = prepare([out.parent / "utk"], tmp_path / "alone", workers=1)
    assert alone.accepted == 40
    before = {row.path.name: row.split for row in load_manifest(tmp_path / "alone")}
    after = {row.path.name: row.split for row in load_manifest(out) if row.dataset == "utkface"}
    assert before == after


@needs_aaf
@needs_chips
def test_evaluate_reports_each_dataset_with_bias_and_predictions(mixed, tmp_path):
    out, _ = mixed
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["evaluate", str(out), "--split", "train", "--json", "--report", str(report), "--min-age", "18"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics["by_dataset"]) == {"utkface", "aaf", "web"}
    assert sum(part["n"] for part in metrics["by_dataset"].values()) == metrics["n"]
    for part in metrics["by_dataset"].values():
        assert part["mae"] is not None and "screening" in part
        for band in part["mae_by_age_band"].values():
            assert band["mae"] >= abs(band["bias"])  # |mean error| never exceeds mean |error|
    assert "mae_by_race_label" not in metrics["by_dataset"]["aaf"]  # AAF has no race labels: no empty audit
    lines = list(csv.DictReader(open(report / "predictions.csv")))
    assert len(lines) == metrics["n"]
    assert list(lines[0]) == ["path", "true_age", "age", "age_low", "age_high", "age_group"]
    first = lines[0]
    assert int(first["age_low"]) <= float(first["age"]) <= int(first["age_high"]) + 1

    only = runner.invoke(app, ["evaluate", str(out), "--split", "train", "--datasets", "aaf", "--json"])
    assert only.exit_code == 0 and json.loads(only.stdout)["n"] == metrics["by_dataset"]["aaf"]["n"]
    unknown = runner.invoke(app, ["evaluate", str(out), "--datasets", "fgnet"])
    assert unknown.exit_code != 0 and "fgnet" in unknown.output and "it holds" in unknown.output
