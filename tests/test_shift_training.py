"""Training for photos unlike the training set: datasets chosen per run, ages evened out,
other cameras' faults, the pretrained network distilled, and the interval widened per
dataset at export. Tiny runs on real chips from two datasets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from agedetect.cli import app  # noqa: E402
from agedetect.data import PrepareSettings, load_manifest, prepare  # noqa: E402
from agedetect.export import export_onnx  # noqa: E402
from agedetect.inference import AgeEstimator  # noqa: E402
from agedetect.errors import DataError  # noqa: E402
from agedetect.train import (  # noqa: E402
    TrainConfig, age_loss, debias_teacher, degrade, fault_consistency, load_checkpoint, load_split, old_print,
    sampling_weights, swap_surroundings, train,
)

from shared_data import AAF, CHIPS, ROOT, copy_sample, load_script  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> Path:
    if not (AAF.is_dir() and CHIPS.is_dir()):
        pytest.skip("../shared UTKFace or All-Age-Faces not present")
    source = tmp_path_factory.mktemp("sources")
    copy_sample(CHIPS, source, 300, 60)
    copy_sample(AAF, source, 250, 40)
    out = tmp_path_factory.mktemp("prepared")
    prepare([source], out, PrepareSettings(seed=0, split=(0.5, 0.3, 0.2)), workers=2)
    return out


def test_sampling_evens_out_a_crowded_age():
    # 30 faces aged 26 and 3 each of 25 and 27, as UTKFace's spike at 26
    ages = np.array([26] * 30 + [25] * 3 + [27] * 3)
    datasets = np.array(["utkface"] * len(ages))
    plain = sampling_weights(ages, datasets, 0.0)
    even = sampling_weights(ages, datasets, 1.0)
    half = sampling_weights(ages, datasets, 0.5)
    share_26 = lambda w: float(w[ages == 26].sum())  # noqa: E731
    assert share_26(plain) == pytest.approx(30 / 36)
    assert share_26(even) == pytest.approx(1 / 3)
    assert share_26(even) < share_26(half) < share_26(plain)


def _apply_to_share(augmentation, share: float, chips: int, side: int):
    """``augmentation`` on random chips: the chips, its output and which chips it changed,
    after checking what every training augmentation promises. It changes about ``share`` of
    them and keeps pixels in 0..255; at a share of 0 it draws nothing, so a run without it
    is the run it was before the option existed."""
    generator = torch.Generator().manual_seed(3)
    batch = torch.rand(chips, side, side, 3, generator=generator) * 255
    out = augmentation(batch, share, generator)
    changed = (out != batch).any(dim=(1, 2, 3))
    assert share - 0.12 < changed.float().mean().item() < share + 0.12 and out.shape == batch.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    state = generator.get_state()
    assert augmentation(batch, 0.0, generator) is batch and torch.equal(generator.get_state(), state)
    return batch, out, changed


def test_degrade_changes_only_the_share_asked_for():
    _apply_to_share(degrade, 0.3, 200, 40)


def test_swap_surroundings_keeps_the_face_and_replaces_the_rest_of_the_share_asked_for():
    chips, out, changed = _apply_to_share(swap_surroundings, 0.4, 300, 40)
    # the middle of the face is the chip's own; a corner is another chip's of the batch
    assert torch.allclose(out[:, 20, 20], chips[:, 20, 20], atol=1e-3)
    corner = out[changed, 0, 0]
    assert not torch.isclose(corner, chips[changed, 0, 0], atol=1.0).all(dim=1).any()
    assert all(any(torch.allclose(c, other, atol=1.0) for other in chips[:, 0, 0]) for c in corner[:20])


def test_old_print_fades_and_greys_only_the_share_asked_for():
    chips, out, changed = _apply_to_share(old_print, 0.4, 300, 24)
    printed = out[changed]
    # colour gone: grey (channels equal) or sepia (red >= green >= blue, from one grey level)
    grey = (printed[..., 0] == printed[..., 1]).all(dim=(1, 2)) & (printed[..., 1] == printed[..., 2]).all(dim=(1, 2))
    sepia = (printed[..., 0] >= printed[..., 1] - 1e-3).all(dim=(1, 2)) & (printed[..., 1] >= printed[..., 2] - 1e-3).all(dim=(1, 2))
    assert bool((grey | sepia).all()) and 0.2 < grey.float().mean().item() < 0.8
    # faded: less contrast than the chip it came from
    assert bool((printed.std(dim=(1, 2, 3)) < chips[changed].std(dim=(1, 2, 3))).all())


def test_a_run_on_one_dataset_distils_the_pretrained_network(two_datasets, tmp_path):
    train_rows = [row for row in load_manifest(two_datasets, "train") if row.dataset == "utkface"]
    config = TrainConfig(model="final", data=str(two_datasets), out=str(tmp_path / "run"), epochs=1, batch_size=16,
                         datasets=("utkface",), balance=0.5, degrade=0.5, surroundings=0.5, teacher="pretrained", teacher_weight=0.3,
                         teacher_gate=5.0, consistency=1.0, old_prints=0.5, face_only=True, teacher_debias=True)
    best = train(config, progress=False)
    teacher = np.load(tmp_path / "run" / "teacher-train.npy")
    # the teacher saw exactly this run's training chips: the UTKFace ones, no AAF face
    assert teacher.shape == (len(train_rows), 101) and np.allclose(teacher.sum(1), 1, atol=1e-4)
    # the pretrained network knows ages: its estimates correlate with the labels
    expected = teacher @ np.arange(101)
    assert np.corrcoef(expected, [row.age for row in train_rows])[0, 1] > 0.5
    saved = torch.load(best, weights_only=False)["config"]
    assert saved["datasets"] == ["utkface"] and saved["balance"] == 0.5 and saved["degrade"] == 0.5
    assert saved["teacher_gate"] == 5.0 and saved["surroundings"] == 0.5 and saved["consistency"] == 1.0
    assert saved["old_prints"] == 0.5 and saved["face_only"] is True and saved["teacher_debias"] is True
    # the network it saved reads the face oval alone, as the exported one will
    assert load_checkpoint(best)[0].spec.options["face_only"] is True
    # resuming with the same settings is accepted (a tuple saved, a list read back)
    train(config, progress=False)
    # a teacher cache that no longer matches the training chips is refused, by name
    np.save(tmp_path / "run" / "teacher-train.npy", teacher[:-1])
    with pytest.raises(DataError, match="teacher-train.npy.*prepared data changed"):
        train(config, progress=False)


def test_a_debiased_teacher_keeps_how_each_face_differs_from_its_age_but_not_its_mean_error():
    rng = np.random.default_rng(0)
    ages = rng.integers(10, 70, 4000)
    datasets = np.where(rng.random(4000) < 0.5, "utkface", "aaf")
    # a teacher that reads teenagers 5 years old, All-Age-Faces' over-50s 8 years young, and
    # each face a little older or younger than others of its age (what is worth keeping)
    own = rng.normal(0, 3, 4000)
    error = 5.0 * np.exp(-0.5 * ((ages - 16) / 4.0) ** 2) - np.where(datasets == "aaf", 8.0 / (1 + np.exp(-(ages - 50) / 3.0)), 0.0)
    centre = ages + error + own
    teacher = np.exp(-0.5 * ((np.arange(101)[None, :] - centre[:, None]) / 3.0) ** 2).astype(np.float32)
    teacher /= teacher.sum(axis=1, keepdims=True)
    out = debias_teacher(teacher, ages, datasets)
    assert np.allclose(out.sum(axis=1), 1, atol=1e-5)
    before, after = teacher @ np.arange(101), out @ np.arange(101)
    for chosen in ((ages >= 13) & (ages <= 17), (datasets == "aaf") & (ages > 52), (ages >= 25) & (ages <= 45)):
        assert abs(np.mean(after[chosen] - ages[chosen])) < 1.0
    assert np.mean(before[(ages >= 13) & (ages <= 17)] - ages[(ages >= 13) & (ages <= 17)]) > 4.0
    # each face's own deviation survives
    assert np.corrcoef(after - ages, own)[0, 1] > 0.8
    # the spread of each distribution is kept, away from the ends of the age range
    spread = lambda p, m: np.sqrt(p.astype(np.float64) @ np.arange(101) ** 2 - m ** 2)  # noqa: E731
    away = (centre > 10) & (centre < 90)
    assert np.allclose(spread(out, after)[away], spread(teacher, before)[away], atol=0.1)  # interpolation adds < 0.05


def test_each_chip_can_take_its_own_share_of_the_teacher():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 101, generator=generator)
    ages = torch.tensor([15, 60])
    teacher = torch.softmax(torch.randn(2, 101, generator=generator), dim=1)
    both = age_loss(logits, ages, teacher=teacher, teacher_weight=torch.tensor([0.5, 0.0]))
    first = age_loss(logits[:1], ages[:1], teacher=teacher[:1], teacher_weight=0.5)
    second = age_loss(logits[1:], ages[1:], teacher=teacher[1:], teacher_weight=0.0)
    assert float(both) == pytest.approx(float(first + second) / 2, rel=1e-5)
    assert float(both) != pytest.approx(float(age_loss(logits, ages, teacher=teacher, teacher_weight=0.5)), rel=1e-3)


def test_fault_consistency_moves_the_faulted_view_toward_the_chips_own_answer():
    generator = torch.Generator().manual_seed(0)
    own = torch.randn(4, 101, generator=generator, requires_grad=True)
    faulted = (own.detach() + torch.randn(4, 101, generator=generator)).requires_grad_()
    loss = fault_consistency(faulted, own)
    loss.backward()
    assert own.grad is None  # the chip's own answer is the target, not pulled toward the faulted one
    stepped = faulted.detach() - 0.5 * faulted.grad
    assert float(fault_consistency(stepped, own)) < loss.item()
    assert float(fault_consistency(own.detach(), own)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="consistency"):
        TrainConfig(model="final", data="d", out="o", consistency=-0.1)


def test_unknown_dataset_is_named(two_datasets, tmp_path):
    result = runner.invoke(app, ["train", "--model", "cnn", "--data", str(two_datasets), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", "--datasets", "fgnet"])
    assert result.exit_code != 0
    assert "fgnet" in result.output and "aaf, utkface" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("options, message", [
    (["--teacher", "pretrained", "--teacher-gate", "0"], "--teacher-gate"),
    (["--teacher", "no-such-model.onnx"], "no-such-model.onnx: no such model file"),
    (["--consistency", "-1"], "--consistency"),
    (["--old-prints", "1.5"], "--old-prints"),
    (["--label-sigma", "0"], "--label-sigma"),
])
def test_bad_teacher_options_exit_2_without_traceback(two_datasets, tmp_path, options, message):
    result = runner.invoke(app, ["train", "--model", "final", "--data", str(two_datasets), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", *options])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_the_command_line_passes_label_sigma_and_old_prints_to_the_run(two_datasets, tmp_path):
    result = runner.invoke(app, ["train", "--model", "cnn", "--data", str(two_datasets), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", "--limit", "32", "--label-sigma", "3", "--old-prints", "0.5"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["label_sigma"] == 3.0 and saved["old_prints"] == 0.5


def test_export_widens_the_interval_on_every_dataset(two_datasets, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(model="cnn", data=str(two_datasets), out=str(run), epochs=1, batch_size=32, lr=1e-3),
          progress=False)
    plain = export_onnx(run, tmp_path / "plain.onnx", calibrate_on=two_datasets, coverage=0.5)
    assert plain["interval_calibration"]["temperature_scale"] >= 1.0  # never narrowed
    result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "wide.onnx"),
                                 "--calibrate-on", str(two_datasets), "--coverage", "0.97"])
    assert result.exit_code == 0, result.output
    wide = json.loads((tmp_path / "wide.json").read_text())["interval_calibration"]
    assert set(wide["coverage_after"]) == {"aaf", "utkface"}
    assert wide["temperature_scale"] > 1.0
    assert all(wide["coverage_after"][d] >= wide["coverage_before"][d] for d in wide["coverage_after"])
    assert wide["met"] == (min(wide["coverage_after"].values()) >= 0.97)
    # the widened temperature is inside the graph: the shipped file's distributions are the
    # flatter ones (a one-epoch model's intervals already span most ages, so compare entropy)
    chips = np.stack([AgeEstimator(tmp_path / "plain.onnx").load_chip(row.path)
                      for row in load_manifest(two_datasets, "val")])

    def entropy(path: Path) -> float:
        probs = AgeEstimator(path).chip_probabilities(chips)
        return float(-(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1).mean())

    assert entropy(tmp_path / "wide.onnx") > entropy(tmp_path / "plain.onnx") + 1e-3


def test_int8_export_is_smaller_checked_and_served(two_datasets, tmp_path):
    from agedetect.errors import ModelError
    from agedetect.export import QUANTIZED_AGE_TOLERANCE, verify_export

    runs = []
    for seed in (0, 1):
        runs.append(tmp_path / f"run{seed}")
        train(TrainConfig(model="cnn", data=str(two_datasets), out=str(runs[-1]), epochs=1, batch_size=32, seed=seed),
              progress=False)
    result = runner.invoke(app, ["export", *map(str, runs), "--out", str(tmp_path / "int8.onnx"),
                                 "--calibrate-on", str(two_datasets), "--quantize"])
    assert result.exit_code == 0, result.output
    assert "int8 weights" in result.output and "years" in result.output
    export_onnx(runs, tmp_path / "float.onnx", half_weights=False)
    meta = json.loads((tmp_path / "int8.json").read_text())
    assert meta["weights"] == "int8" and len(meta["members"]) == 2
    assert 0 < meta["int8_check"]["mean_age_shift"] < meta["int8_check"]["tolerance"] == QUANTIZED_AGE_TOLERANCE
    assert (tmp_path / "int8.onnx").stat().st_size < 0.4 * (tmp_path / "float.onnx").stat().st_size
    # served like any model, with ages close to the float graph's
    rows = load_manifest(two_datasets, "test")
    chips = np.stack([AgeEstimator(tmp_path / "float.onnx").load_chip(row.path) for row in rows])
    ages = np.arange(101)
    gap = np.abs(AgeEstimator(tmp_path / "int8.onnx").chip_probabilities(chips) @ ages
                 - AgeEstimator(tmp_path / "float.onnx").chip_probabilities(chips) @ ages)
    assert gap.mean() < QUANTIZED_AGE_TOLERANCE
    # checked against the checkpoints it came from: a member whose head says other ages is
    # refused, and the file removed
    assert verify_export(runs, tmp_path / "int8.onnx", data_dir=two_datasets) < QUANTIZED_AGE_TOLERANCE
    state = torch.load(runs[0] / "best.pt", weights_only=False)
    head_bias = next(name for name, value in reversed(state["model"].items()) if tuple(value.shape) == (101,))
    state["model"][head_bias] += torch.linspace(0, 30, 101)
    torch.save(state, tmp_path / "older.pt")
    with pytest.raises(ModelError, match="years of expected age"):
        verify_export([tmp_path / "older.pt", runs[1]], tmp_path / "int8.onnx", data_dir=two_datasets)
    assert not (tmp_path / "int8.onnx").exists() and not (tmp_path / "int8.json").exists()


def test_quantize_without_validation_faces_exits_2(two_datasets, tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path / "no-run"), "--out", str(tmp_path / "m.onnx"), "--quantize"])
    assert result.exit_code == 2 and "--calibrate-on" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_small_faces_get_wider_intervals(tmp_path):
    """A face that spans few photo pixels is read with the widening its model's sidecar
    measured; the same face large, or a model without the curve, is not widened."""
    from PIL import Image

    from agedetect.faces import face_resolution
    from agedetect.inference import DEFAULT_MODEL
    from shared_data import PEOPLE

    if not PEOPLE.is_dir():
        pytest.skip(f"{PEOPLE} not present")
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "m.onnx")
    sidecar = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    sidecar["interval_by_resolution"] = {"chip_px": [20, 40, 80], "temperature_scale": [3.0, 2.0, 1.0]}
    (tmp_path / "m.json").write_text(json.dumps(sidecar))
    widened, plain = AgeEstimator(tmp_path / "m.onnx"), AgeEstimator(tmp_path / "m.onnx")
    plain.metadata.pop("interval_by_resolution")
    assert widened.widening([10, 30, 60, 500]).tolist() == [3.0, 2.5, 1.5, 1.0]
    assert plain.widening([10, 500]).tolist() == [1.0, 1.0]

    photo = Image.open(PEOPLE / "couple.jpg").convert("RGB")
    small = photo.resize((photo.width // 18, photo.height // 18), Image.BOX)
    (big_face,) = widened.predict(photo)[:1]
    tiny = widened.predict(small)
    assert tiny, "the detector should still find a face at this size"
    assert face_resolution(tiny[0].face) < 60 < face_resolution(big_face.face)
    width = lambda face: face.age_interval[1] - face.age_interval[0]  # noqa: E731
    assert width(tiny[0]) > width(plain.predict(small)[0])
    assert width(big_face) == width(plain.predict(photo)[0])


def test_packed_chips_unpack_into_a_folder_training_reads(two_datasets, tmp_path):
    packed, unpacked = tmp_path / "data.npz", tmp_path / "unpacked"
    for command in (["pack", str(two_datasets), str(packed)], ["unpack", str(packed), str(unpacked)]):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "pack_data.py"), *command],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    for split in ("train", "val", "test"):
        original, copy = load_manifest(two_datasets, split), load_manifest(unpacked, split)
        assert [(r.dataset, r.age, r.photo) for r in copy] == [(r.dataset, r.age, r.photo) for r in original]
    # the same faces at 64 px, within WebP's loss
    before = load_split(two_datasets, "val", 64).chips.astype(np.float32)
    after = load_split(unpacked, "val", 64).chips.astype(np.float32)
    assert after.shape == before.shape and 0 < np.abs(after - before).mean() < 4


def test_recipe_sweep_trains_each_recipe_on_all_and_on_each_dataset(two_datasets, tmp_path):
    recipes = tmp_path / "recipes.txt"
    recipes.write_text("# tiny\nplain --epochs 1 --batch-size 16\nwider --epochs 1 --batch-size 16 --label-sigma 3\n")
    results = tmp_path / "sweep.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "recipe_sweep.py"), "--data", str(two_datasets),
                           "--out", str(tmp_path / "runs"), "--recipes", str(recipes), "--limit", "24",
                           "--threads", "1", "--json", str(results)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(results.read_text())
    assert set(figures) == {f"{r}/{d}" for r in ("plain", "wider") for d in ("all", "aaf", "utkface")}
    assert all(0 < f[d]["mae"] < 60 for f in figures.values() for d in ("aaf", "utkface"))
    assert "| wider | aaf | utkface* |" in done.stdout  # a dataset the run never saw is marked
    assert json.loads((tmp_path / "runs" / "wider-aaf" / "config.json").read_text())["label_sigma"] == 3.0
    recipes.write_text("broken --epochs 1 --no-such-option 3\n")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "recipe_sweep.py"), "--data", str(two_datasets),
                           "--out", str(tmp_path / "runs"), "--recipes", str(recipes)], capture_output=True, text=True)
    assert done.returncode != 0 and f"{recipes}:1: '--no-such-option' is not a training option" in done.stderr
    assert "Traceback" not in done.stderr


def test_age_prior_is_the_mix_training_draws_and_alpha_divides_it_out(two_datasets: Path, monkeypatch) -> None:
    """bench/age_prior.py: the prior follows --balance (balance 0: the raw mix, its most
    common age weighs most; balance 1: each dataset's ages alike), alpha 0 leaves an answer
    as it is, and alpha 1 turns an answer that is the prior itself into every age alike."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    bench = load_script(ROOT / "bench" / "age_prior.py")
    raw, even = bench.training_prior(two_datasets, 0.0), bench.training_prior(two_datasets, 1.0)
    for prior in (raw, even):
        assert prior.shape == (101,) and prior.min() > 0 and prior.sum() == pytest.approx(1.0)
    ages = np.array([row.age for row in load_manifest(two_datasets, split="train")])
    commonest = int(np.bincount(ages).argmax())
    assert raw[commonest] / even[commonest] > 1.0
    answers = np.random.default_rng(0).dirichlet(np.ones(101), size=3)
    np.testing.assert_allclose(bench.reweighted(answers, raw, 0.0), answers, rtol=1e-9)
    np.testing.assert_allclose(bench.reweighted(raw[None], raw, 1.0), np.full((1, 101), 1 / 101), rtol=1e-9)
