"""The docs say what the code does: the README's example answer is the shipped model's,
its error table lists every error the app answers, and one place states how long
`make model` takes (the model card, from the run itself)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agedetect.web import errors as web_errors
from shared_data import ROOT, load_script, needs_photos

README = ROOT / "README.md"


def _script(name: str):
    return load_script(ROOT / "scripts" / f"{name}.py")


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


def runs_folder(folder: Path, metrics: dict) -> Path:
    """What `make model` leaves in runs/ for scripts/model_card.py, with ``metrics`` as the
    shipped model's test figures (the comparison rows are the shipped model's figures too)."""
    folder.mkdir()
    parts = metrics.get("by_dataset") or {"utkface": metrics}
    compare = {
        dataset: {name: {key: part[key] for key in ("n", "mae", "cs5", "group_accuracy", "interval_coverage")}
                  | {"teens_passed_as_25": 0.2, "ms_per_face": 2.0} for name in ("dense", "cnn", "transfer", "final")}
        for dataset, part in parts.items()
    }
    files = {
        "final-test.json": metrics,
        "final-val.json": {"screening": {"minors_passed": 0.02, "teens_passed": 0.05, "adults_referred": 0.1}},
        "compare.json": compare,
        "prepare.json": {"seen": 10, "accepted": 9, "rejected": 1, "reasons": {"duplicate": 1},
                         "splits": {"train": 7, "val": 1, "test": 1}, "out": "runs/nowhere",
                         "datasets": {d: {"train": 5, "val": 2, "test": 2} for d in parts}},
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    return folder


def test_the_model_card_prints_the_sidecars_figures_and_compares_sha256s(tmp_path: Path, monkeypatch) -> None:
    card = _script("model_card")
    sidecar = json.loads(card.MODEL.with_suffix(".json").read_text())
    runs = runs_folder(tmp_path / "runs", sidecar["metrics"])
    out, readme = tmp_path / "card.md", tmp_path / "README.md"
    readme.write_text(f"intro\n{card.README_START}\nold figures\n{card.README_END}\nrest\n")
    monkeypatch.setattr(sys, "argv", ["model_card.py", "--runs", str(runs), "--out", str(out), "--minutes", "7",
                                      "--readme", str(readme)])
    card.main()
    text = out.read_text()
    for dataset, part in (sidecar["metrics"].get("by_dataset") or {"utkface": sidecar["metrics"]}).items():
        # each dataset's row of the shipped model's table: faces, MAE, bias as the sidecar has them
        assert f"| {part['n']:,} | {part['mae']:.2f} | {part['bias']:+.1f} |" in text
    figures = readme.read_text()
    assert "old figures" not in figures and figures.startswith("intro\n") and figures.endswith("rest\n")
    assert f"{sidecar['metrics']['by_dataset']['utkface']['mae']:.2f}" in figures
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:src/agedetect/weights/age_model.onnx"],
                               capture_output=True)
    if head.returncode == 0 and committed.returncode == 0:
        same = hashlib.sha256(committed.stdout).hexdigest() == sidecar["sha256"]
        expected = "byte-identical to the one committed at" if same else "is not the one committed at"
        assert expected in text and head.stdout.strip() in text
    assert "`make model` took 7 minutes" in text and "Past experiments" in text and "5.04–5.19" in text
    assert "Not measured in this checkout: run `bash scripts/shift_runs.sh`" in text  # no make shift results here
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "a22ed1f:docs/MODEL_CARD.md"]).returncode == 0:
        monkeypatch.setattr(sys, "argv", sys.argv + ["--shift-from", "a22ed1f"])
        card.main()
        carried = out.read_text()
        assert "carried over word for word from the card at commit a22ed1f" in carried
        assert "| recipe | options of `agedetect train --model final` | idea |" in carried
        assert "Not measured in this checkout: run `bash scripts/shift_runs.sh`" not in carried
    # Another model than the committed one is named as such, by its sha256.
    assert "is not the one committed at" in card.reproduction("7", sidecar | {"sha256": "0" * 64}) or head.returncode
    assert card.reproduction(None, sidecar) == ""  # no claim when the card is not written by make model
    # --compare-with names the commit before the run; one without the model has nothing to compare.
    first = subprocess.run(["git", "-C", str(ROOT), "rev-list", "--max-parents=0", "HEAD"], capture_output=True, text=True)
    if first.returncode == 0:
        assert "no committed model to compare it with" in card.reproduction("7", sidecar, first.stdout.split()[0])


def test_the_card_says_when_make_model_wrote_the_model_and_whether_only_its_settings_differ() -> None:
    import onnx

    card = _script("model_card")
    sidecar = json.loads(card.MODEL.with_suffix(".json").read_text())
    assert card.reproduction(95, sidecar).startswith("`make model` took 95 minutes on a")
    assert "`make card` then took 31 minutes" in card.reproduction(95, sidecar, card_minutes=31)
    assert "make card" not in card.reproduction(95, sidecar)  # TRAIN=0: no baselines trained, none timed
    member = json.loads(json.dumps(sidecar["members"][0]))
    member["config"] |= {"epochs": 10, "schedule_epochs": 12}
    assert "best of 10 epochs (of a 12-epoch schedule) at epoch" in card.member_line(0, member, 64)
    member["config"]["schedule_epochs"] = None
    assert "best of 10 epochs at epoch" in card.member_line(0, member, 64)
    shipped = card.MODEL.read_bytes()
    resaid = onnx.ModelProto.FromString(shipped)
    resaid.metadata_props[0].value = resaid.metadata_props[0].value[:-1] + ', "schedule_epochs": 12}'
    assert resaid.SerializeToString() != shipped and card.same_graph(shipped, resaid.SerializeToString())
    changed = onnx.ModelProto.FromString(shipped)
    weight = next(t for t in changed.graph.initializer if t.raw_data)
    weight.raw_data = bytes([weight.raw_data[0] ^ 1]) + weight.raw_data[1:]
    assert not card.same_graph(shipped, changed.SerializeToString())


def test_the_card_says_why_a_timed_run_s_members_were_not_kept() -> None:
    """model_card.py --rerun: the run's validation figures beside those of the members kept,
    per dataset, and how they were put back; nothing when the run's own members ship."""
    card = _script("model_card")
    kept = {"by_dataset": {d: {"mae": mae, "mae_by_age_band": {"13-17": {"bias": bias}}}
                           for d, mae, bias in (("aaf", 5.59, 3.4), ("utkface", 4.94, 2.8))}}
    worse = {"by_dataset": {d: {"mae": m["mae"] + 0.08, "mae_by_age_band": {"13-17": {"bias": 3.9}}}
                            for d, m in kept["by_dataset"].items()}}
    text = card.kept_members(worse, kept, "16aa798")
    assert "MAE 5.67 / 5.02 against 5.59 / 4.94 (All-Age-Faces / UTKFace" in text
    assert "+3.9 / +3.9 against +3.4 / +2.8" in text and "commit `16aa798`" in text and "TRAIN=0" in text
    assert card.kept_members(None, kept, None) == ""
    # a member the run trained to the very same figures is named, the others keep their commit
    def member(out: str, name: str, mae: float) -> dict:
        return {"name": name, "epochs": 10, "val": {"mae": mae}, "config": {"out": out}}

    shipped = [member("runs/final-c", "final", 5.38), member("runs/final-x", "descriptor", 5.24)]
    rerun = [member("runs/final-c", "final", 5.41), member("runs/final-x", "descriptor", 5.24)]
    text = card.kept_members(worse, kept, "16aa798", rerun, shipped)
    assert "(`runs/final-c` trained by `make model` at commit `16aa798`)" in text
    assert "The run's `runs/final-x` came out as the one kept" in text and "frozen" in text
    assert "came out" not in card.kept_members(worse, kept, "16aa798", rerun[:1], shipped[:1])


def test_the_card_says_which_runs_a_model_exported_again_came_from(tmp_path: Path) -> None:
    """model_card.py --exported-minutes: the runs an earlier `make model` trained (those in the
    sidecar committed at --members-from), each run trained since with its epochs and minutes
    from its history.jsonl, and the TRAIN=0 run's wall time; no claim of an end-to-end run."""
    card = _script("model_card")
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "f7e09ea:src/agedetect/weights/age_model.json"]).returncode:
        pytest.skip("not a clone with the project's history")
    outs = ["runs/final-c", "runs/final-g", "runs/final-x", "runs/final-new"]
    sidecar = {"sha256": "ab" * 32, "members": [{"config": {"out": out}} for out in outs]}
    (tmp_path / "final-new").mkdir()
    (tmp_path / "final-new" / "history.jsonl").write_text(
        "".join(json.dumps({"epoch": e, "seconds": 300.0}) + "\n" for e in (1, 2, 3)))
    text = card.exported_again("41", sidecar, tmp_path, "f7e09ea", "124")
    assert text.startswith("`make model` has not been run end to end for this model.")
    assert ("`runs/final-c`, `runs/final-g` and `runs/final-x` are the runs `make model` trained for the model "
            "committed at `f7e09ea` (that run took 124 minutes") in text
    assert ("`runs/final-new` (3 epochs in 15 minutes, its `history.jsonl`) was trained since with the command "
            "`scripts/train_models.sh` now runs for it") in text
    assert "`TRAIN=0 bash scripts/train_models.sh` exported and scored them in 41 minutes" in text
    assert "`abababababababab…`" in text and "It took" not in text
    # a run trained since whose folder is not here is named without a time
    elsewhere = card.exported_again("41", sidecar, tmp_path / "nowhere", "f7e09ea", None)
    assert f"`runs/final-new` (its `history.jsonl` not in {tmp_path / 'nowhere'})" in elsewhere
    assert "(that run took" not in elsewhere


def test_the_card_shows_how_far_each_fault_moves_the_shipped_models_answers() -> None:
    """bench/faults.py's figures as the card prints them: each fault's MAE and the move of the
    13-17 / 18-24 bias from the chips as they are, and the range of the 13-17 moves."""
    card = _script("model_card")
    figures = lambda mae, teens, young: {"mae": mae, "bias_13-17": teens, "bias_18-24": young}  # noqa: E731
    faults = {"utkface": {"shipped": {"none": figures(4.9, 2.8, 3.1), "blur": figures(5.75, 4.6, 4.3)}},
              "aaf": {"shipped": {"none": figures(5.6, 3.4, 3.0), "blur": figures(6.25, 3.0, 4.0)}}}
    text = card.faults_section(faults)
    assert "| UTKFace | 4.90 (+2.8 / +3.1) | 5.75 (+1.8 / +1.2) |" in text
    assert "| All-Age-Faces | 5.60 (+3.4 / +3.0) | 6.25 (-0.4 / +1.0) |" in text
    assert "by -0.4 to +1.8 years" in text and "0.35–0.46 years of MAE" in text
    assert "not measured in this checkout" in card.faults_section(None)


def test_the_model_card_refuses_figures_other_than_the_sidecars(tmp_path: Path, monkeypatch) -> None:
    card = _script("model_card")
    sidecar = json.loads(card.MODEL.with_suffix(".json").read_text())
    runs = runs_folder(tmp_path / "runs", sidecar["metrics"] | {"mae": 3.0})
    monkeypatch.setattr(sys, "argv", ["model_card.py", "--runs", str(runs), "--out", str(tmp_path / "card.md")])
    with pytest.raises(SystemExit, match="sidecar metrics are not runs/final-test.json"):
        card.main()


def test_the_card_names_every_leave_one_out_recipe_with_its_options_and_idea() -> None:
    card = _script("model_card")
    recipes = card.shift_recipes()
    assert "gated" in recipes and "--teacher-gate 5" in recipes["gated"]
    assert set(recipes) == set(card.RECIPE_IDEA), "a recipe of scripts/shift_runs.sh the card cannot explain"
    assert set(card.RECIPE_BASE) <= set(recipes) and set(card.RECIPE_BASE.values()) <= set(recipes)
    # bench/shift.py lists the runs in the order the ideas were added; the card's legend too.
    assert tuple(card.RECIPE_IDEA) == load_script(ROOT / "bench" / "shift.py").RECIPE_ORDER


def test_the_weight_mixing_section_names_the_best_mix_on_unseen_photos() -> None:
    card = _script("model_card")
    row = lambda alpha, tested_on, mae: {"run": "gated-utkface", "trained_on": "utkface", "alpha": alpha,  # noqa: E731
                                         "tested_on": tested_on, "mae": mae, "teen_bias": 4.0}
    text = card.interpolation_section([row(1.0, "aaf", 7.1), row(0.7, "aaf", 6.9), row(1.0, "utkface", 5.1),
                                       row(0.7, "utkface", 5.3)])
    assert "| `gated-utkface` | UTKFace | **All-Age-Faces** | 7.10 (+4.0) | 6.90 (+4.0) |" in text
    assert "`gated-utkface` at alpha 0.7, 6.90 (as trained 7.10)" in text
    assert "not measured" in card.interpolation_section(None)


def test_the_readme_names_the_default_risk_cap() -> None:
    from agedetect.uses import DEFAULT_MAX_MINOR_RISK

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"at most a {DEFAULT_MAX_MINOR_RISK * 100:g}% chance of being under 18" in readme


def test_the_shift_table_shows_each_run_widened_on_its_own_dataset() -> None:
    card = _script("model_card")
    figures = {"mae": 7.0, "bias": -2.0, "teen_bias": 5.0, "interval_coverage": 0.70, "teens_passed": 0.15,
               "adults_referred": 0.30}
    widened = {"scale": 1.1, "interval_coverage": 0.75, "teens_passed": 0.10, "adults_referred": 0.40}
    text = card.shift_section([
        {"recipe": "native-distilled", "trained_on": "utkface", "tested_on": "aaf", **figures, "widened": widened},
        {"recipe": "gated", "trained_on": "utkface", "tested_on": "aaf", **figures, "widened": widened},
        {"recipe": "final", "trained_on": "all", "tested_on": "aaf", **figures, "widened": None},
    ])
    assert "| gated | UTKFace | **All-Age-Faces** | 7.00 | -2.0 | +5.0 | 70.0% | 15.0% | 30.0% | 75.0% / 10.0% / 40.0% |" in text
    assert "| final | both (shipped) | All-Age-Faces |" in text and "(widened at export)" in text
    assert "`gated` trained on UTKFace: MAE 7.00 (`native-distilled` 7.00)" in text
    # the legend names each recipe shown with its options, read from scripts/shift_runs.sh
    assert ("| `gated` | `--balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-gate 5` |"
            in text)


def test_the_recipe_sweep_names_only_changes_that_beat_two_seeds_everywhere(tmp_path: Path) -> None:
    card = _script("model_card")
    recipes = tmp_path / "recipes.txt"
    recipes.write_text("# the shipped recipe first\nbase --epochs 12\nseed5 --epochs 12 --seed 5\n"
                       "longer --epochs 24\nsharper --epochs 12 --label-sigma 1\n")

    def run(utk_all: float, aaf_all: float, utk_to_aaf: float, aaf_to_utk: float) -> dict:
        figure = lambda mae: {"mae": mae, "teen_bias": 3.0}  # noqa: E731
        return {"all": {"utkface": figure(utk_all), "aaf": figure(aaf_all)},
                "utkface": {"aaf": figure(utk_to_aaf)}, "aaf": {"utkface": figure(aaf_to_utk)}}

    figures = {"base": run(5.0, 5.8, 7.4, 6.1), "seed5": run(5.1, 5.7, 7.0, 6.2),
               "longer": run(4.8, 5.6, 6.9, 5.9),   # better than base by more than the seeds differ, everywhere
               "sharper": run(4.5, 5.0, 7.3, 6.0)}  # better, but not beyond the seeds' 0.4 on UTKFace → AAF
    results = {f"{name}/{trained_on}": per for name, runs in figures.items() for trained_on, per in runs.items()}
    text = card.sweep_section(results, recipes)
    assert "`longer` beat the base recipe" in text and "`sharper`" not in text.split("differ by")[1]
    assert "| `longer` | `--epochs 24` | 4.80 (+3.0) |" in text
    del results["longer/all"], results["sharper/all"]
    assert "no change beats the base recipe" in card.sweep_section(results, recipes)


def test_a_card_without_make_shift_carries_its_leave_one_out_part_over_word_for_word() -> None:
    """model_card.py --shift-from REV: the part from the section's heading to the faults of
    other cameras, as the card at REV had it, headed by where it comes from."""
    card = _script("model_card")
    revision = "a22ed1f"  # the last card written with `make shift`'s results beside it
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{revision}:docs/MODEL_CARD.md"]).returncode:
        pytest.skip(f"a shallow clone without commit {revision}")
    old = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:docs/MODEL_CARD.md"], capture_output=True,
                         text=True, check=True).stdout
    text = card.carried_shift_part(revision, "349df5430f16600bffff")
    note, _, carried = text.partition("\n\n")
    assert "carried over word for word from the card at commit a22ed1f" in note and "349df5430f16600b…" in note
    assert carried in old and carried.startswith("The project's held-back sets")
    assert "| recipe | options of `agedetect train --model final` | idea |" in carried
    assert "Scanned family photos" not in carried and "## " not in carried
    with pytest.raises(SystemExit, match="no model card committed there"):
        card.carried_shift_part("no-such-revision", None)


def test_the_card_knows_every_descriptor_model() -> None:
    pytest.importorskip("torch")
    from agedetect.models import DESCRIPTOR_MODELS

    card = _script("model_card")
    assert card.DESCRIPTOR_MODELS == DESCRIPTOR_MODELS and set(DESCRIPTOR_MODELS) <= set(card.NETWORKS)


def test_the_descriptor_text_says_whether_the_levels_ship(tmp_path: Path) -> None:
    """The card's descriptor part labels the share the shipped model gives the descriptor, and
    says whether its member reads the levels (shipped) or not (measured, not shipped yet)."""
    card = _script("model_card")

    def row(recipe: str, dataset: str, mae: float) -> dict:
        return {"recipe": recipe, "tested_on": dataset, "mae": mae, "teen_bias": 1.5}

    recipes = ["final-c", "final-g", "final-x", "outputs averaged", "outputs averaged, without final-x",
               "outputs averaged, final-x at 0.4", "outputs averaged, final-x at 0.5"]
    def members(kind: str, weights: tuple) -> list[dict]:
        return [{"name": name, "options": {"ensemble_weight": w}}
                for name, w in zip(("final", "final", kind), weights)]

    (tmp_path / "members-final.json").write_text(json.dumps(
        [row(r, d, 5.0 + i / 100) for i, r in enumerate(recipes) for d in ("utkface", "aaf")]))
    now = card.descriptor_text(tmp_path, {}, members("descriptor", (3, 3, 4)))
    levels = card.descriptor_text(tmp_path, {}, members("descriptor_levels", (1, 1, 2)))
    assert "| **the three, the descriptor at 40% (as shipped)** | 5.05 (+1.5) | 5.05 (+1.5) |" in now
    assert "| the three, the descriptor at 50% | 5.06 (+1.5) |" in now and "Not in the shipped model yet" in now
    assert "--without-last --last-share 0.4 --last-share 0.5`" in now and "(the descriptor)" in now
    assert "| **the three, the descriptor at 50% (as shipped)** | 5.06 (+1.5) | 5.06 (+1.5) |" in levels
    assert "reads its levels in the model shipped now, at 50% of the average" in levels
    assert "(the descriptor, with its levels)" in levels and "Not in the shipped model yet" not in levels


def test_shipping_an_export_records_its_figures_as_export_would(tmp_path: Path) -> None:
    """scripts/ship_model.py (`make model`'s last step) copies the exported file and writes its
    figures into the sidecar where `agedetect export --metrics --typical-error` writes them:
    the shipped model, shipped again with its own figures, comes out byte for byte."""
    ship = _script("ship_model")
    sidecar = json.loads(ship.DEFAULT_MODEL.with_suffix(".json").read_text())
    exported = tmp_path / "final.onnx"
    exported.write_bytes(ship.DEFAULT_MODEL.read_bytes())
    bare = {key: value for key, value in sidecar.items() if key not in ("metrics", "typical_error")}
    exported.with_suffix(".json").write_text(json.dumps(bare))
    dest = tmp_path / "shipped.onnx"
    ship.ship(exported, sidecar["metrics"], {"mae_by_age_band": sidecar["typical_error"]}, dest)
    assert dest.read_bytes() == ship.DEFAULT_MODEL.read_bytes()
    assert dest.with_suffix(".json").read_text() == ship.DEFAULT_MODEL.with_suffix(".json").read_text()
    # A sidecar that is not the file's (another export's) is refused, and nothing is copied.
    exported.with_suffix(".json").write_text(json.dumps(bare | {"sha256": "0" * 64}))
    with pytest.raises(SystemExit, match="sidecar's sha256 is not the file's"):
        ship.ship(exported, {}, {"mae_by_age_band": {}}, tmp_path / "other.onnx")
    assert not (tmp_path / "other.onnx").exists()
