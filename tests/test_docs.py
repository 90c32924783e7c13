"""The docs say what the code does: the README's example answer is the shipped model's,
its error table lists every error the app answers, and one place states how long
`make model` takes (the model card, from the run itself)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agedetect.web import errors as web_errors
from shared_data import ROOT, needs_photos

README = ROOT / "README.md"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@needs_photos
def test_the_readme_example_is_what_the_shipped_model_answers() -> None:
    """Each number as printed, to its last digit (one unit of it either way, for a rounding
    that falls differently on another CPU); `python scripts/readme_example.py` rewrites it."""
    example = _script("readme_example")
    text = README.read_text()
    start, end = example.example_span(text)
    printed, fresh = text[start:end], example.render(example.answer())
    ours, theirs = NUMBER.findall(printed), NUMBER.findall(fresh)
    assert len(ours) == len(theirs), f"README's example has another shape; the model says:\n{fresh}"
    for written, measured in zip(ours, theirs):
        unit = 10 ** -len(written.partition(".")[2])
        assert abs(float(written) - float(measured)) <= unit + 1e-9, (
            f"README says {written} where the shipped model says {measured}: run scripts/readme_example.py\n{fresh}")


def _error_table() -> set[tuple[int, str]]:
    text = README.read_text()
    table = text[text.index("| status | code | when |"):]
    table = table[: table.index("\n\n")]
    return {(int(status), code) for status, code in re.findall(r"^\| (\d{3}) \| `(\w+)` \|", table, re.M)}


def test_the_readme_error_table_lists_every_error_the_app_answers() -> None:
    answered = {(status, code) for _, status, code in web_errors.DOMAIN_ERRORS}
    answered |= set(web_errors._HTTP_CODES.items())
    answered |= {(503, "busy"), (500, "internal_error"), (422, "invalid_request")}
    assert _error_table() == answered


@pytest.mark.parametrize("path", ["README.md", "Makefile"])
def test_only_the_model_card_says_how_long_make_model_takes(path: str) -> None:
    lines = [line for line in (ROOT / path).read_text().splitlines() if "make model" in line or "Takes" in line]
    assert not [line for line in lines if re.search(r"\b\d+ minutes\b", line)], \
        "a typed duration of make model: the model card records the measured one"


# --------------------------------------------------------------------------- the model card


def test_the_model_cards_reproduction_claim_compares_sha256s() -> None:
    """What `make model` found is said by comparing the written model's sha256 with the
    committed one's, never assumed; without --minutes (not written by make model) no claim."""
    card = _script("model_card")
    sidecar = json.loads(card.MODEL.with_suffix(".json").read_text())
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:src/agedetect/weights/age_model.onnx"],
                               capture_output=True)
    if head.returncode or committed.returncode:
        pytest.skip("not a git checkout with a committed model")
    same = hashlib.sha256(committed.stdout).hexdigest() == sidecar["sha256"]
    found = card.reproduction("7", sidecar)
    assert "It took 7 minutes" in found and head.stdout.strip() in found
    assert ("byte-identical to the one committed at" if same else "is not the one committed at") in found
    other = card.reproduction("7", sidecar | {"sha256": "0" * 64})
    assert "is not the one committed at" in other and "0000000000000000…" in other
    assert card.reproduction(None, sidecar) == ""


def runs_folder(folder: Path, metrics: dict) -> Path:
    """runs/final-test.json as `make model` leaves it, with ``metrics`` in it."""
    folder.mkdir()
    (folder / "final-test.json").write_text(json.dumps(metrics))
    return folder


def test_the_model_card_refuses_figures_other_than_the_sidecars(tmp_path: Path, monkeypatch) -> None:
    card = _script("model_card")
    sidecar = json.loads(card.MODEL.with_suffix(".json").read_text())
    runs = runs_folder(tmp_path / "runs", sidecar["metrics"] | {"mae": 3.0})
    monkeypatch.setattr(sys, "argv", ["model_card.py", "--runs", str(runs), "--out", str(tmp_path / "card.md")])
    with pytest.raises(SystemExit, match="sidecar metrics are not runs/final-test.json"):
        card.main()
