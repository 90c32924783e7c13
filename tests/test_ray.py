"""``--engine ray``: a local Ray run on real chips and photos, a photo with no face, a
corrupt file, a file that is not an image, and a list with a ``file://`` URI and a missing
path. The Ray engine must give the local engine's rows, count every input once, and fail
cleanly where Ray is not installed.

Ray starts twice here (once in the ``agedetect`` subprocess, once in this process for
the rest); on 2 shared cores the file takes about a minute, and each run is bounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.batch import CSV_COLUMNS
from agedetect.cli import app

from shared_data import CHIPS, NO_FACES, PEOPLE, needs_data
AGEDETECT = str(Path(sys.executable).with_name("agedetect"))

try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install -e '.[ray]'; make test does)")

#: Wall-clock bound of one Ray run over the small folder (Ray's own start included).
RUN_LIMIT_S = 180  # a hang guard: a run takes 10-40 s on 2 idle cores, much longer on busy ones
runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """30 UTKFace chips of all ages, a photo with two faces, a scene with none, a truncated
    JPEG, a text file named .jpg; and a list of two more inputs: a chip outside the folder
    as a file:// URI and a path that does not exist."""
    root = tmp_path_factory.mktemp("ray-inputs")
    folder = root / "photos"
    folder.mkdir()
    names = sorted(p.name for p in CHIPS.glob("*.chip.jpg"))
    for name in names[:: len(names) // 30][:30]:
        shutil.copy(CHIPS / name, folder / name)
    couple = Image.open(PEOPLE / "couple.jpg").convert("RGB")
    couple.thumbnail((900, 900))
    couple.save(folder / "couple.jpg", quality=92)
    shutil.copy(NO_FACES / "114740.jpg", folder / "scene.jpg")
    data = (folder / "couple.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.jpg").write_text("not a photo")
    extra = root / "extra.chip.jpg"
    shutil.copy(CHIPS / names[7], extra)
    listing = root / "inputs.txt"
    listing.write_text(f"{extra.as_uri()}\n\n{root / 'missing.jpg'}\n")
    return {"folder": folder, "list": listing, "files": 30 + 4 + 2, "uri": extra.as_uri(),
            "missing": str(root / "missing.jpg")}


@pytest.fixture(scope="module")
def local_ray():
    """Ray in this process, which the engine uses (and leaves running) instead of its own."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def local_csv(*args: str) -> list[dict]:
    result = runner.invoke(app, ["predict", *args, "--format", "csv", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def ray_as_csv(out: Path) -> list[dict]:
    """The Ray run's faces and failures as the rows ``--format csv`` prints."""
    import pyarrow.parquet as pq

    faces = pq.read_table(out / "faces").to_pylist()
    failures = pq.read_table(out / "failures").to_pylist()
    columns = CSV_COLUMNS
    rows = [{c: "" if face[c] is None else str(face[c]) for c in columns} for face in faces]
    rows += [dict.fromkeys(columns, "") | {"file": f["file"], "error": f["error"]} for f in failures]
    return rows


def by_file_and_face(rows: list[dict]) -> list[tuple]:
    """The rows' CSV_COLUMNS, sorted (local CSV rows also carry p_<group>, rounded)."""
    return sorted(tuple(row[c] for c in CSV_COLUMNS) for row in rows)


def timed_invoke(*args: str):
    began = time.perf_counter()
    result = runner.invoke(app, list(args))
    elapsed = time.perf_counter() - began
    assert elapsed < RUN_LIMIT_S, f"a Ray run over {args} took {elapsed:.0f} s"
    return result


@pytest.mark.slow
@needs_ray
@needs_data
def test_cli_on_ray_gives_the_local_rows_and_counts_every_input(inputs: dict, tmp_path: Path) -> None:
    """The real command in a fresh process: Ray starts here, quietly, and stops."""
    out = tmp_path / "out"
    command = [AGEDETECT, "predict", str(inputs["folder"]), "--list", str(inputs["list"]), "--engine", "ray",
               "--actors", "2", "--out", str(out), "--format", "json"]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_LIMIT_S + 30)
    elapsed = time.perf_counter() - began
    assert result.returncode == 0, result.stderr
    assert elapsed < RUN_LIMIT_S, f"the Ray run took {elapsed:.0f} s"
    assert "Traceback" not in result.stderr and "INFO" not in result.stderr

    # Identical rows to the local engine's --format csv, whatever order Ray wrote them in.
    local = local_csv(str(inputs["folder"]), "--list", str(inputs["list"]))
    assert by_file_and_face(ray_as_csv(out)) == by_file_and_face(local)

    # Every input once: with faces + without a face + failed = seen.
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    import pyarrow.parquet as pq

    faces, failures = pq.read_table(out / "faces").to_pylist(), pq.read_table(out / "failures").to_pylist()
    face_files, failed_files = {f["file"] for f in faces}, [f["file"] for f in failures]
    assert summary["files_seen"] == inputs["files"] == len(face_files) + len(failed_files)
    assert not face_files & set(failed_files) and len(set(failed_files)) == len(failed_files)
    assert summary["files_with_faces"] == len(face_files) and summary["faces"] == len(faces)
    assert summary["files_with_faces"] + summary["files_without_face"] + summary["files_failed"] == summary["files_seen"]
    assert summary["reconciled"] is True and summary["actors"] == 2
    reasons = {Path(f["file"]).name: f["reason"] for f in failures}
    assert reasons["scene.jpg"] == "no_face"
    assert reasons["truncated.jpg"] == reasons["notes.jpg"] == reasons["missing.jpg"] == "unreadable_image"
    assert summary["failed_reasons"] == {"unreadable_image": 3} and summary["files_failed"] == 3
    couple = sorted((f["face"], f["age_group"]) for f in faces if f["file"].endswith("couple.jpg"))
    assert [face for face, _ in couple] == [1, 2]  # two faces: two rows, one file
    assert inputs["uri"] in face_files  # the file:// input was read
    # Each face's group probabilities sum to one and the named group is among them.
    groups = list(summary["groups"])
    for face in faces:
        assert abs(sum(face[f"p_{g}"] for g in groups) - 1) < 1e-3 and face["age_group"] in groups


@pytest.mark.slow
@needs_ray
@needs_data
def test_audience_on_ray_counts_the_same_groups(inputs: dict, tmp_path: Path, local_ray: None) -> None:
    args = [str(inputs["folder"]), "--list", str(inputs["list"]), "--json"]
    local = runner.invoke(app, ["audience", *args, "--out", str(tmp_path / "local"), "--workers", "1"])
    assert local.exit_code == 0, local.output
    on_ray = timed_invoke("audience", *args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--actors", "2")
    assert on_ray.exit_code == 0, on_ray.output
    mine, theirs = json.loads(on_ray.stdout), json.loads(local.stdout)
    shares, local_shares = mine.pop("shares"), theirs.pop("shares")
    mine.pop("out"), theirs.pop("report")
    assert mine == theirs and mine["images"] == inputs["files"]
    assert shares.keys() == local_shares.keys()
    assert all(abs(shares[g] - local_shares[g]) <= 1e-4 for g in shares)

    # A second run into the same folder is refused instead of mixing two runs' files.
    again = timed_invoke("audience", *args, "--out", str(tmp_path / "ray"), "--engine", "ray")
    assert again.exit_code == 2 and "already holds results" in again.stderr


@pytest.mark.slow
@needs_ray
@needs_data
def test_aligned_chips_on_ray_match_local(inputs: dict, tmp_path: Path, local_ray: None) -> None:
    """Chips go through the model in batches of different sizes on each engine: the ages
    must not depend on which chips share a batch."""
    chips = [str(p) for p in sorted(inputs["folder"].glob("*.chip.jpg"))] + [str(inputs["folder"] / "scene.jpg")]
    out = tmp_path / "out"
    result = timed_invoke("predict", *chips, "--aligned", "--engine", "ray", "--actors", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = ray_as_csv(out)
    assert by_file_and_face(rows) == by_file_and_face(local_csv(*chips, "--aligned"))
    assert sum(r["error"] == "" for r in rows) == 30 and "not square" in [r for r in rows if r["error"]][0]["error"]


@pytest.mark.slow
@needs_ray
@needs_data
def test_a_node_with_another_model_stops_the_job_with_one_clear_error(inputs: dict, local_ray: None) -> None:
    """An actor refuses a model that differs from the driver's (a node with another
    agedetect version); the user sees that error, not an actor's traceback."""
    from agedetect import ray_engine
    from agedetect.errors import ModelError

    labels = ("0-20", "21-26", "27-35", "36-50", "51+")
    job = ray_engine._predict([str(inputs["folder"] / "couple.jpg")], None, "0" * 64, labels, False, 1, 8)
    with pytest.raises(ray.exceptions.RayError) as raised:
        job.materialize()
    error = ray_engine._job_error(raised.value)
    assert isinstance(error, ModelError) and "differs from the driver's" in str(error)
    assert "Traceback" not in str(error) and "\n" not in str(error)


def test_without_ray_the_message_names_the_extra(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (50, 50)).save(image)
    # Ray hidden from the import system, as on a default install.
    code = ("import sys; sys.modules['ray'] = None; from agedetect.cli import app; "
            f"app(['predict', {str(image)!r}, '--engine', 'ray', '--out', {str(tmp_path / 'out')!r}])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "pip install 'agedetect[ray]'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--engine", "ray"], "give --out DIR"),
    (["--actors", "2"], "--actors need --engine ray"),
    (["--out", "x", "--address", "auto"], "--address, --out need --engine ray"),
    (["--engine", "ray", "--out", "x", "--workers", "2"], "use --actors"),
    (["--engine", "ray", "--out", "x", "--format", "csv"], "--format json prints the counts"),
])
def test_engine_options_are_checked_before_anything_runs(tmp_path: Path, args: list, message: str) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path / "a.jpg"), *args])
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # Typer may wrap it in a box
    assert result.exit_code == 2 and message in text, result.output


def test_a_list_file_feeds_the_local_engine_too(tmp_path: Path) -> None:
    """--list: paths and file:// URIs, blank lines skipped, a missing entry is a row."""
    image = tmp_path / "a b.png"
    Image.new("RGB", (64, 64), "gray").save(image)
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"  {image.as_uri()}  \n\n{tmp_path / 'gone.jpg'}\nhttp://example.com/c.jpg\n")
    result = runner.invoke(app, ["predict", "--list", str(listing), "--format", "json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    errors = {row["file"]: row["error"] for row in json.loads(result.stdout)}
    assert errors == {
        image.as_uri(): "no face found",
        str(tmp_path / "gone.jpg"): "no such file",
        "http://example.com/c.jpg": "http:// is not supported (local paths and file:// URIs only; mount the "
                                    "storage and list its paths)",
    }
    nothing = runner.invoke(app, ["predict", "--list", str(tmp_path / "none.txt")])
    assert nothing.exit_code == 2 and "cannot read the list of inputs" in nothing.stderr


@needs_ray
def test_ray_client_addresses_are_refused_with_the_way_that_works(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path / "a.jpg"), "--engine", "ray", "--address",
                                 "ray://head:10001", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "does not run through Ray Client" in result.stderr
    assert "ray job submit" in result.stderr and not (tmp_path / "out").exists()
