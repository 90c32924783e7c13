"""``agedetect train``, ``export``, ``evaluate`` and ``models``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from agedetect.cli import app
from agedetect.cli.common import console, print_json, user_errors


def _need_training_extra() -> None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        console.print("error: training needs PyTorch: pip install 'agedetect[train]'", style="bold red",
                      markup=False, highlight=False)
        raise typer.Exit(2) from None


def registered_models() -> list[tuple[str, str]]:
    """``(name, first line of its docstring)`` of each architecture in agedetect.models.

    Read from the module's source, not by importing it, so that listing works on the
    serving install, which has no PyTorch: a function decorated ``@register_model`` is
    what ``models.list_models()`` lists (tests/test_cli_models.py checks they agree)."""
    import ast
    import importlib.resources

    source = importlib.resources.files("agedetect").joinpath("models.py").read_text(encoding="utf-8")
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Name) and d.id == "register_model" for d in node.decorator_list
        ):
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            found.append((node.name, doc[0] if doc else ""))
    return sorted(found)


@app.command("models")
def models_command() -> None:
    """List the registered model architectures (training them needs the train extra)."""
    listed = registered_models()
    width = max(len(name) for name, _ in listed)
    for name, doc in listed:
        typer.echo(f"{name:{width}s} {doc}")


@app.command("train")
def train_command(
    model: str = typer.Option(..., "--model", help="Architecture; `agedetect models` lists them."),
    data: Path = typer.Option(..., "--data", help="A folder made by `agedetect data prepare`."),
    out: Path = typer.Option(..., "--out", help="Run folder; an existing one is resumed."),
    epochs: int = typer.Option(10, min=1),
    schedule_epochs: Optional[int] = typer.Option(
        None, min=1, help="Epochs the learning rate's cosine spans (default: --epochs); more than --epochs stops "
                          "training partway down it."),
    batch_size: int = typer.Option(128, min=1),
    lr: float = typer.Option(1e-3, help="Peak learning rate of the new head (pretrained layers get --body-lr-scale of it)."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    input_size: Optional[int] = typer.Option(None, help="Chip side in pixels (default: the model's)."),
    crop: Optional[float] = typer.Option(None, min=0.3, max=1.0, help="Share of the chip the network sees, centred (default: the model's)."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N chips of each split (smoke tests)."),
    ema: Optional[float] = typer.Option(
        None, min=0.0, max=0.99999, help="Validate and save a moving average of the weights with this decay (e.g. 0.998)."),
    teacher: Optional[str] = typer.Option(
        None, help="What to distil, its age distributions joining the target: an exported model (.onnx), or "
                   "'pretrained' for the model's own pretrained network before fine-tuning."),
    teacher_weight: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of the teacher's distribution in the target."),
    teacher_gate: Optional[float] = typer.Option(
        None, min=0.1, help="Years: fade the teacher's share on chips where its estimate is this far from the label "
                            "(Gaussian; default: the same share everywhere)."),
    body_lr_scale: Optional[float] = typer.Option(
        None, min=0.0, help="Learning rate of the pretrained layers as a share of --lr (default 0.3 for final; 1 for models from scratch)."),
    datasets: Optional[str] = typer.Option(
        None, help="Train and validate on these datasets of the prepared folder only, comma-separated "
                   "(e.g. utkface); default: all."),
    balance: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Even out ages: sample chips with weight n^-BALANCE, n = chips of the same "
                                    "dataset and age (0 = every chip alike, 1 = every age bin alike)."),
    degrade: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of training chips given a fault of another camera or era "
                                    "(JPEG, blur, low resolution, noise, sepia, colour cast)."),
    surroundings: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of training chips given another chip's surroundings (all but an oval "
                                    "around the face), so backgrounds and hair stop telling an age."),
    label_sigma: float = typer.Option(
        2.0, min=0.1, help="Years of the Gaussian each label is spread over in the target distribution."),
    old_prints: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of training chips made into an old print, scanned: grey or sepia, "
                                    "faded and grainy."),
    consistency: float = typer.Option(
        0.0, min=0.0, help="Weight of a second view of each chip, given one more camera or era fault, whose "
                           "answer is pulled toward the chip's own (0 = off; doubles the work per step)."),
    face_only: bool = typer.Option(
        False, "--face-only", help="The network sees only an oval around the face; the rest of the chip (hair, "
                                   "clothes, background) is blanked, in training and in the exported model."),
    network_side: Optional[int] = typer.Option(
        None, min=1, help="descriptor models only: the side, in pixels, chips are scaled to before dlib's network (its own "
                          "150 by default; 132 reads the same face for 0.77 of the work)."),
    tune_levels: int = typer.Option(
        0, min=0, help="descriptor models only: how many of dlib's network's last levels learn, at --body-lr-scale "
                       "times the rate (0 = the network stays frozen; the last four are the cheapest to train)."),
    teacher_debias: bool = typer.Option(
        False, "--teacher-debias", help="Take the teacher's mean error at each true age (per dataset) out of its "
                                        "distributions, keeping how each face differs from others of its age."),
) -> None:
    """Train an age model on prepared chips, with checkpoints (resumable)."""
    _need_training_extra()
    from agedetect.models import DESCRIPTOR_MODELS, check_network_side, check_tune_levels, list_models
    from agedetect.train import TrainConfig, train

    from agedetect.train import PRETRAINED_TEACHER

    if schedule_epochs is not None and schedule_epochs < epochs:
        raise typer.BadParameter(f"{schedule_epochs} is fewer than --epochs {epochs}; the schedule must cover "
                                 "every epoch trained", param_hint="--schedule-epochs")
    if teacher_debias and teacher is None:
        raise typer.BadParameter("takes a teacher's error out, so it needs --teacher", param_hint="--teacher-debias")
    if teacher is not None and teacher != PRETRAINED_TEACHER and not Path(teacher).is_file():
        raise typer.BadParameter(f"{teacher}: no such model file (or say '{PRETRAINED_TEACHER}')", param_hint="--teacher")
    with user_errors():
        if model not in list_models():
            raise typer.BadParameter(f"unknown model {model!r}; choose one of: {', '.join(list_models())}")
        # Options of the descriptor models only, each refused (exit 2) on another model or out of range.
        for hint, value, check, what in (("--network-side", network_side, check_network_side, "read chips at another side"),
                                         ("--tune-levels", tune_levels or None, check_tune_levels,
                                          "have levels to fine-tune")):
            if value is None:
                continue
            if model not in DESCRIPTOR_MODELS:
                raise typer.BadParameter(f"only the descriptor models {what}, not {model!r}", param_hint=hint)
            try:
                check(value)
            except ValueError as error:
                raise typer.BadParameter(str(error), param_hint=hint) from None
        config = TrainConfig(model=model, data=str(data), out=str(out), epochs=epochs, schedule_epochs=schedule_epochs,
                             batch_size=batch_size,
                             lr=lr, seed=seed, device=device, input_size=input_size, crop=crop, limit=limit,
                             ema=ema, teacher=teacher, teacher_weight=teacher_weight, teacher_gate=teacher_gate,
                             body_lr_scale=body_lr_scale, balance=balance, degrade=degrade,
                             surroundings=surroundings, old_prints=old_prints, consistency=consistency, label_sigma=label_sigma,
                             face_only=face_only, teacher_debias=teacher_debias, network_side=network_side,
                             tune_levels=tune_levels,
                             datasets=tuple(d.strip() for d in datasets.split(",") if d.strip()) if datasets else None)
        best = train(config)
        console.print(f"best checkpoint: {best}", markup=False, highlight=False)


@app.command("export")
def export_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (their best.pt) or checkpoint files; several are exported as one averaging ensemble."),
    out: Path = typer.Option(..., "--out", help="Where to write FILE.onnx (and FILE.json beside it)."),
    metrics: Optional[Path] = typer.Option(
        None, help="`evaluate --json` output on the test split, stored with the model (model card figures)."),
    typical_error: Optional[Path] = typer.Option(
        None, help="`evaluate --json` output on the validation split: its error per age band becomes the "
                   "model's typical error (used by `agedetect gap`)."),
    mirror: Optional[bool] = typer.Option(
        None, "--mirror/--no-mirror", help="Average each face with its mirror image (default: as each run was "
                                           "trained); --no-mirror halves the cost per face."),
    calibrate_on: Optional[Path] = typer.Option(
        None, "--calibrate-on", help="A prepared folder: widen the 80% interval until it covers --coverage of "
                                     "the validation faces of every dataset in it."),
    coverage: float = typer.Option(0.8, min=0.5, max=0.99, help="With --calibrate-on: the share to cover."),
    quantize: bool = typer.Option(
        False, "--quantize", help="Store convolutions and head as int8, ranges set on --calibrate-on's validation "
                                  "faces: about 2x faster per face on CPUs with 8-bit dot products, ages within 0.5 years on average."),
    member_weights: Optional[str] = typer.Option(
        None, "--member-weights", help="Each run's share of the average, comma-separated in the order of the runs "
                                       "(2,2,1: the last counts half as much as each other); default: equal."),
) -> None:
    """Export a checkpoint to ONNX with its metadata, and check PyTorch and ONNX agree
    (exit 2 and no file when they differ by more than 2e-3 in any age's probability, or,
    with --quantize, by more than 0.5 years of expected age on average)."""
    _need_training_extra()
    from agedetect.export import (
        QUANTIZATION_FACES, QUANTIZED_AGE_TOLERANCE, add_to_sidecar, export_onnx, verify_export,
    )

    if quantize and calibrate_on is None:
        raise typer.BadParameter("needs --calibrate-on DATA: int8 ranges are set on its validation faces",
                                 param_hint="--quantize")
    weights = _member_weights(member_weights, len(runs)) if member_weights is not None else None
    with user_errors():
        extra = {}
        if metrics:
            extra["metrics"] = _read_json(metrics)
        if typical_error:
            extra["typical_error"] = _read_json(typical_error)["mae_by_age_band"]
        meta = export_onnx(runs, out, extra, mirror=mirror, calibrate_on=calibrate_on, coverage=coverage,
                           quantize=quantize, weights=weights)
        if "interval_calibration" in meta:
            found = meta["interval_calibration"]
            console.print(
                f"interval: temperature x{found['temperature_scale']:g}; validation coverage "
                + ", ".join(f"{name} {found['coverage_before'][name]:.1%} -> {value:.1%}"
                            for name, value in found["coverage_after"].items())
                + ("" if found["met"] else f" (target {coverage:.0%} not reached)")
            )
        gap = verify_export(runs, out, mirror=mirror, data_dir=calibrate_on)
        if quantize:  # what rounding to int8 cost, beside the model (its card reports it)
            add_to_sidecar(out, {"int8_check": {"mean_age_shift": gap, "faces": QUANTIZATION_FACES,
                                                "tolerance": QUANTIZED_AGE_TOLERANCE}})
        difference = (f"mean |PyTorch - ONNX| expected age = {gap:.2f} years" if quantize
                      else f"max |PyTorch - ONNX| = {gap:.2e}")
        console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {meta['weights']} weights); {difference}",
                      markup=False, highlight=False)


def _member_weights(text: str, runs: int) -> list[float]:
    """``--member-weights`` as numbers, refused (exit 2) where the export's own check refuses them."""
    from agedetect.export import check_member_weights

    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint="--member-weights") from None
    try:
        check_member_weights(weights, runs)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--member-weights") from None
    return weights


def _read_json(path: Path) -> dict:
    from agedetect.errors import DataError

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable JSON file ({error})") from None


@app.command("evaluate")
def evaluate_command(
    data: Optional[Path] = typer.Argument(None, help="Folder of UTKFace-named images, or a prepared folder."),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A CSV with path,age[,gender,race] columns."),
    split: str = typer.Option("test", help="Split of a prepared folder to score."),
    datasets: Optional[str] = typer.Option(
        None, "--datasets", help="Of a prepared folder, score these datasets only (comma-separated; default: all, "
                                 "with figures per dataset)."),
    aligned: bool = typer.Option(False, "--aligned", help="--labels images are aligned chips: skip detection."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write PNG plots and index.html here."),
    min_age: Optional[int] = typer.Option(None, "--min-age", help="Also score an age-check policy: legal age."),
    buffer: int = typer.Option(7, "--buffer", help="Years above --min-age an estimate must reach to pass."),
) -> None:
    """Score a model on labelled faces: MAE, CS@5, group accuracy, error by band/gender/group.

    Labels come from UTKFace file names (AGE_GENDER_RACE_DATE.jpg), a prepared folder, or
    --labels CSV; images without a label are counted as unlabelled, not scored."""
    from rich.progress import Progress

    from agedetect import evaluate as ev
    from agedetect.errors import DataError
    from agedetect.inference import AgeEstimator

    with user_errors():
        if labels is not None:
            samples = ev.samples_from_csv(labels, aligned=aligned)
        elif data is None:
            raise typer.BadParameter("give a DATA folder or --labels CSV")
        elif not data.exists():
            raise DataError(f"{data}: no such file or folder")
        elif (data / "manifest.csv").exists():
            wanted = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
            samples = ev.samples_from_prepared(data, split, wanted)
        else:
            samples = ev.samples_from_folder(data)
        if samples and all(s.error == ev.UNLABELLED for s in samples):
            raise DataError(
                f"{data}: none of its {len(samples)} images has an age label: evaluate reads ages from UTKFace "
                "names (AGE_GENDER_RACE_DATE.jpg) or from --labels CSV (path,age); to estimate ages of "
                "unlabelled photos use agedetect predict")
        estimator = AgeEstimator(model)
        with Progress(console=console, transient=True, disable=json_out and not console.is_terminal) as bar:
            task = bar.add_task("evaluating", total=len(samples))
            scored = ev.score_samples(samples, estimator, progress=lambda k: bar.advance(task, k))
        groups = estimator.groups
        metrics = ev.metrics_for(scored, groups, screening=(min_age, buffer) if min_age is not None else None)
        if report is not None:
            page = ev.write_report(scored, metrics, groups, report)
            console.print(f"report: {page}", markup=False, highlight=False)
        if json_out:
            print_json(metrics)
        else:
            _print_summary(metrics)


def _print_summary(metrics: dict) -> None:
    """The figures on stdout; what could not be scored, and why, on stderr."""
    from rich.table import Table

    from agedetect.cli.common import plain, results

    table = Table(title="evaluation", show_header=False)
    for key in ("n", "mae", "cs5", "group_accuracy", "interval_coverage", "failed"):
        table.add_row(key, str(metrics.get(key)))
    for reason, count in (metrics.get("failed_reasons") or {}).items():
        table.add_row(plain(f"  {reason}"), str(count))
    out = results()
    out.print(table)
    bands = Table("age band", "n", "MAE", title="error by age band")
    for band, value in metrics["mae_by_age_band"].items():
        bands.add_row(band, str(value["n"]), f"{value['mae']:.2f}")
    out.print(bands)
    unlabelled = (metrics.get("failed_reasons") or {}).get("unlabelled")
    if unlabelled:
        console.print(f"{unlabelled} image{'s' * (unlabelled != 1)} had no age label in the name (UTKFace: "
                      "AGE_GENDER_RACE_DATE.jpg) and were not scored; give labels with --labels CSV",
                      markup=False, highlight=False)
