"""Bulk commands never lose a file: ``predict``, ``audience``, ``evaluate`` and
``data prepare``, through their CLIs with JSON output, account for every input
(seen = processed + failed) when files are corrupt, empty, not images, dangling
symbolic links, FIFOs (which once hung every command), decompression bombs or folders
named like images; when files vanish or turn into FIFOs mid-run; and when a run is
interrupted (Ctrl+C, exit 130) and simply run again.

Running as root, file modes cannot make a file unreadable, so unreadable files are
made the ways that work for anyone: dangling links, FIFOs and files deleted mid-run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect.cli import app
from agedetect.inference import AgeEstimator

from built_images import png_claiming
from shared_data import CHIPS, NO_FACES, PEOPLE, needs_data
pytestmark = needs_data

runner = CliRunner()

#: What cannot be used, and how each is made.
HAZARDS = ("corrupt", "empty", "text", "dangling", "fifo", "bomb")


def invoke(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def small_copy(source: Path, target: Path, side: int = 480) -> Path:
    picture = Image.open(source).convert("RGB")
    picture.thumbnail((side, side))
    picture.save(target, quality=90)
    return target


def make_fifo(path: Path) -> None:
    """A FIFO at ``path``. Should a regression make a command block on it again, a writer
    comes by now and then to let the reader see an empty file, so the test fails instead
    of hanging the suite."""
    os.mkfifo(path)

    def unblock() -> None:
        for _ in range(12):
            time.sleep(10)
            try:  # succeeds only while a reader is waiting
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    threading.Thread(target=unblock, daemon=True).start()


def add_hazards(folder: Path, name: Callable[[str], str]) -> dict[str, Path]:
    """One file of each :data:`HAZARDS` kind in ``folder``, named ``name(kind)``; and a
    folder named like an image (not an input: only files are)."""
    good = (PEOPLE / "img2.jpg").read_bytes()
    paths = {kind: folder / name(kind) for kind in HAZARDS}
    paths["corrupt"].write_bytes(good[:600])
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("a shopping list, not a photo\n")
    paths["dangling"].symlink_to(folder / "gone-long-ago.jpg")
    make_fifo(paths["fifo"])
    paths["bomb"].write_bytes(png_claiming(100_000, 100_000))
    (folder / name("folder")).mkdir()
    return paths


def inputs_in(folder: Path) -> set[str]:
    """The files in ``folder`` (links included, folders not): what a run must account for."""
    return {str(p) for p in folder.rglob("*") if p.is_symlink() or not p.is_dir()}


class Calls:
    """Replace ``owner.attribute`` with a wrapper that runs ``before(call number)`` first."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, attribute: str,
                 before: Callable[[int], None]) -> None:
        self.count = 0
        real = getattr(owner, attribute)

        def wrapper(*args, **kwargs):
            self.count += 1
            before(self.count)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, wrapper)


def vanish_and_swap(victim: Path, swapped: Path) -> Callable[[int], None]:
    """On the first call: ``victim`` is deleted and ``swapped`` becomes a FIFO."""
    def before(call: int) -> None:
        if call == 1:
            victim.unlink()
            swapped.unlink()
            make_fifo(swapped)
    return before


def interrupt_at(n: int) -> Callable[[int], None]:
    def before(call: int) -> None:
        if call == n:
            raise KeyboardInterrupt
    return before


def check_interrupted(code: int, out: str, err: str) -> None:
    assert code == 130, err
    assert out == "" and "interrupted" in err and "Traceback" not in err


# =========================================================================== predict and audience


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two photos with faces (one of them two faces), a scene with none, each hazard, and two
    more face photos that the mid-run tests delete or turn into a FIFO."""
    folder = tmp_path / "photos"
    folder.mkdir()
    small_copy(PEOPLE / "img2.jpg", folder / "one-face.jpg")
    small_copy(PEOPLE / "couple.jpg", folder / "couple.jpg", side=640)
    small_copy(NO_FACES / "114740.jpg", folder / "scene.jpg")
    small_copy(PEOPLE / "img2.jpg", folder / "zz-victim.jpg")
    small_copy(PEOPLE / "img2.jpg", folder / "zz-swapped.jpg")
    add_hazards(folder, lambda kind: f"{kind}.png" if kind == "bomb" else f"{kind}.jpg")
    return folder


def predict_rows(*args: object) -> tuple[dict[str, list[dict]], str]:
    code, out, err = invoke("predict", *args, "--format", "json")
    assert code == 0, err
    by_file: dict[str, list[dict]] = {}
    for row in json.loads(out):
        by_file.setdefault(row["file"], []).append(row)
    return by_file, err


def check_predict_accounts(by_file: dict[str, list[dict]], err: str, folder: Path, failed: set[str]) -> None:
    assert set(by_file) == inputs_in(folder)  # every input has rows, nothing else does
    for file, rows in by_file.items():
        name = Path(file).name
        if name in failed or name == "scene.jpg":
            assert len(rows) == 1 and rows[0]["age"] is None and rows[0]["error"], rows
        else:
            assert all(row["age"] is not None and row["error"] is None for row in rows), rows
    seen = len(by_file)
    assert f"{seen} images: {seen - len(failed) - 1} with faces" in err  # -1: the scene has none


def test_predict_accounts_for_every_file_in_a_pool(photos: Path) -> None:
    by_file, err = predict_rows(photos, "--workers", "2")  # the FIFO goes to a worker process
    check_predict_accounts(by_file, err, photos, {f"{kind}.{'png' if kind == 'bomb' else 'jpg'}" for kind in HAZARDS})
    errors = {Path(f).name: rows[0]["error"] for f, rows in by_file.items() if rows[0]["error"]}
    assert "not a regular file" in errors["fifo.jpg"] and errors["dangling.jpg"] == "no such file"
    assert "pixels" in errors["bomb.png"] and "empty" in errors["empty.jpg"]
    assert len(by_file[str(photos / "couple.jpg")]) == 2


def test_predict_files_vanishing_mid_run_are_counted(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Calls(monkeypatch, AgeEstimator, "predict", vanish_and_swap(photos / "zz-victim.jpg", photos / "zz-swapped.jpg"))
    by_file, err = predict_rows(photos, "--workers", "1")
    failed = {f"{kind}.{'png' if kind == 'bomb' else 'jpg'}" for kind in HAZARDS} | {"zz-victim.jpg", "zz-swapped.jpg"}
    by_file[str(photos / "zz-victim.jpg")]  # still reported, though gone from the folder
    assert by_file[str(photos / "zz-victim.jpg")][0]["error"] == "no such file"
    assert "not a regular file" in by_file[str(photos / "zz-swapped.jpg")][0]["error"]
    (photos / "zz-victim.jpg").write_bytes(b"")  # back in the folder, so inputs_in() lists it
    check_predict_accounts(by_file, err, photos, failed)


def test_predict_interrupted_then_rerun_accounts_for_everything(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        Calls(patch, AgeEstimator, "predict", interrupt_at(3))
        check_interrupted(*invoke("predict", photos, "--format", "json", "--workers", "1"))
    by_file, err = predict_rows(photos, "--workers", "1")
    check_predict_accounts(by_file, err, photos, {f"{kind}.{'png' if kind == 'bomb' else 'jpg'}" for kind in HAZARDS})


def audience_counts(folder: Path, out: Path, workers: int) -> dict:
    code, stdout, err = invoke("audience", folder, "--out", out, "--json", "--workers", workers)
    assert code == 0, err
    body = json.loads(stdout)
    with open(out / "failures.csv", newline="") as handle:
        failures = {row["file"]: row["reason"] for row in csv.DictReader(handle)}
    with open(out / "faces.csv", newline="") as handle:
        face_files = {row["file"] for row in csv.DictReader(handle)}
    assert body["images"] == body["processed"] + body["failed"] == len(inputs_in(folder))
    assert set(failures) | face_files == inputs_in(folder)  # every input without a face is in failures.csv
    assert failures[str(folder / "scene.jpg")] == "no_face"
    assert len(failures) == body["failed"] + body["no_face_images"] and body["no_face_images"] == 1
    body.pop("report")
    return body | {"failures": failures}


def test_audience_accounts_for_every_file(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = audience_counts(photos, tmp_path / "pool", workers=2)
    assert body["failed"] == len(HAZARDS) and body["failures"][str(photos / "fifo.jpg")] == "unreadable_image"
    assert body["faces"] == 5  # one-face, couple (2), victim and swapped

    # Interrupted, then run again into the same folder: the same counts.
    with monkeypatch.context() as patch:
        Calls(patch, AgeEstimator, "predict", interrupt_at(4))
        check_interrupted(*invoke("audience", photos, "--out", tmp_path / "again", "--json", "--workers", 1))
    assert audience_counts(photos, tmp_path / "again", workers=1) == body

    # Files vanishing mid-run are failures, not gaps.
    Calls(monkeypatch, AgeEstimator, "predict", vanish_and_swap(photos / "zz-victim.jpg", photos / "zz-swapped.jpg"))
    code, stdout, err = invoke("audience", photos, "--out", tmp_path / "vanish", "--json", "--workers", 1)
    assert code == 0, err
    vanished = json.loads(stdout)
    assert vanished["images"] == body["images"] and vanished["failed"] == body["failed"] + 2
    assert vanished["processed"] + vanished["failed"] == vanished["images"] and vanished["faces"] == 3


# =========================================================================== evaluate and data prepare


def utk(index: int, age: int = 30) -> str:
    """A UTKFace chip name with a datetime of its own."""
    return f"{age}_1_0_20170101{index:09d}.jpg.chip.jpg"


@pytest.fixture
def chips(tmp_path: Path) -> Path:
    """Twelve real UTKFace chips, each hazard under a chip's name, a non-square "chip",
    a name that is not UTKFace's and a text file (not an image name: prepare counts it,
    evaluate does not look at it)."""
    folder = tmp_path / "chips"
    folder.mkdir()
    names = sorted(os.listdir(CHIPS))
    for name in names[:: len(names) // 12][:12]:
        shutil.copy(CHIPS / name, folder / name)
    add_hazards(folder, lambda kind: utk(HAZARDS.index(kind) if kind in HAZARDS else 99))
    Image.new("RGB", (200, 120), "gray").save(folder / utk(50))
    shutil.copy(CHIPS / names[0], folder / "portrait-of-nobody.jpg")
    (folder / "readme.txt").write_text("notes")
    return folder


def evaluate_json(folder: Path, report: Path) -> dict:
    code, out, err = invoke("evaluate", folder, "--json", "--report", report)
    assert code == 0, err
    metrics = json.loads(out)
    images = inputs_in(folder) - {str(folder / "readme.txt")}
    assert metrics["seen"] == metrics["n"] + metrics["failed"] == len(images)
    with open(report / "failures.csv", newline="") as handle:
        failed = [row["path"] for row in csv.DictReader(handle)]
    assert len(failed) == len(set(failed)) == metrics["failed"]
    return metrics | {"failed_files": set(failed)}


def test_evaluate_accounts_for_every_file(chips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = evaluate_json(chips, tmp_path / "report")
    assert metrics["n"] == 12 and metrics["failed"] == len(HAZARDS) + 2  # + non-square, + bad name
    assert metrics["failed_reasons"]["unreadable_image"] == 5  # corrupt, empty, text, dangling, FIFO

    with monkeypatch.context() as patch:
        Calls(patch, AgeEstimator, "load_chip", interrupt_at(5))
        check_interrupted(*invoke("evaluate", chips, "--json"))
    again = evaluate_json(chips, tmp_path / "again")
    assert {k: again[k] for k in ("n", "failed", "failed_reasons", "mae")} == {
        k: metrics[k] for k in ("n", "failed", "failed_reasons", "mae")}

    victim, swapped = sorted(chips.glob("[1-9]*_*_*_2016*.chip.jpg"))[-2:]
    Calls(monkeypatch, AgeEstimator, "load_chip", vanish_and_swap(victim, swapped))
    code, out, err = invoke("evaluate", chips, "--json")
    assert code == 0, err
    vanished = json.loads(out)
    assert vanished["seen"] == metrics["seen"] and vanished["n"] == 10 and vanished["failed"] == metrics["failed"] + 2


def test_evaluate_with_nothing_scorable_still_counts_the_failures(tmp_path: Path) -> None:
    add_hazards(tmp_path, lambda kind: utk(HAZARDS.index(kind) if kind in HAZARDS else 99))
    code, out, err = invoke("evaluate", tmp_path, "--json", "--min-age", 18)
    assert code == 0 and "Traceback" not in err, err
    metrics = json.loads(out)
    assert (metrics["n"], metrics["failed"], metrics["seen"], metrics["mae"]) == (0, len(HAZARDS), len(HAZARDS), None)


def prepare_json(source: Path, out: Path) -> dict:
    code, stdout, err = invoke("data", "prepare", source, "--out", out, "--json", "--workers", 1)
    assert code == 0, err
    result = json.loads(stdout)
    with open(out / "manifest.csv", newline="") as handle:
        accepted = [row["source"] for row in csv.DictReader(handle)]
    with open(out / "rejected.csv", newline="") as handle:
        rejected = {row["source"]: row["reason"] for row in csv.DictReader(handle)}
    assert result["seen"] == result["accepted"] + result["rejected"] == len(inputs_in(source))
    assert set(accepted) | set(rejected) == inputs_in(source) and not set(accepted) & set(rejected)
    return result | {"rejected_files": rejected}


def test_prepare_accounts_for_every_file(chips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = prepare_json(chips, tmp_path / "clean")
    assert clean["accepted"] == 12
    assert clean["rejected_files"][str(chips / utk(HAZARDS.index("fifo")))] == "unreadable_file"
    assert clean["rejected_files"][str(chips / utk(HAZARDS.index("dangling")))] == "unreadable_file"
    assert clean["rejected_files"][str(chips / "readme.txt")] == "not_an_image"

    # Interrupted, then run again into the same folder: the same manifest, byte for byte.
    from agedetect import data

    out = tmp_path / "again"
    with monkeypatch.context() as patch:
        Calls(patch, data, "_examine", interrupt_at(6))
        check_interrupted(*invoke("data", "prepare", chips, "--out", out, "--json", "--workers", 1))
    assert not (out / "manifest.csv").exists()  # no half-written results to mistake for whole ones
    again = prepare_json(chips, out)
    for name in ("manifest.csv", "rejected.csv"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert {k: again[k] for k in ("seen", "accepted", "rejected", "reasons")} == {
        k: clean[k] for k in ("seen", "accepted", "rejected", "reasons")}

    victim, swapped = sorted(chips.glob("[1-9]*_*_*_2016*.chip.jpg"))[-2:]
    Calls(monkeypatch, data, "_read_file", vanish_and_swap(victim, swapped))
    code, stdout, err = invoke("data", "prepare", chips, "--out", tmp_path / "vanish", "--json", "--workers", 1)
    assert code == 0, err
    vanished = json.loads(stdout)
    assert vanished["seen"] == clean["seen"] and vanished["accepted"] == 10
    assert vanished["reasons"]["unreadable_file"] == clean["reasons"]["unreadable_file"] + 2


# =========================================================================== a real Ctrl+C


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the worker processes")
@pytest.mark.parametrize("delay", [0.0, 1.0], ids=["as the workers start", "mid-run"])
@pytest.mark.parametrize("command", [
    ["predict", str(CHIPS), "--format", "json", "--workers", "2"],
    ["data", "prepare", str(CHIPS), "--workers", "2", "--json", "--out", "{tmp}/out"],
], ids=["predict", "data prepare"])
def test_ctrl_c_stops_a_pool_run_cleanly(command: list[str], delay: float, tmp_path: Path) -> None:
    """SIGINT to the whole process group, as Ctrl+C in a terminal sends it, while worker
    processes start or run on 20,000 UTKFace files: exit 130 at once, one line, no
    traceback from the command or any worker (the in-process tests above show the rerun
    accounts for all). Once, a Ctrl+C as the workers started printed their tracebacks, and
    for prepare a misleading "a worker process died (out of memory?)"; one while predict was
    still queueing its files ran the whole batch before exiting."""
    agedetect = str(Path(sys.executable).with_name("agedetect"))
    args = [arg.format(tmp=tmp_path) for arg in command]
    # A shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that; restore the default so the command sees Ctrl+C as a terminal user's does.
    process = subprocess.Popen([agedetect, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while len(children(process.pid)) < 2:  # the workers
            assert process.poll() is None and time.monotonic() < deadline, "no worker processes started"
            time.sleep(0.05)
        time.sleep(delay)
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGINT)
        began = time.monotonic()
        out, err = process.communicate(timeout=60)
        assert time.monotonic() - began < 15
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err.decode()
    assert out == b"" and err.decode().strip() == "interrupted"
