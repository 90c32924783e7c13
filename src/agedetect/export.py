"""Export a trained checkpoint to the ONNX file agedetect serves, plus its sidecar JSON.

The graph takes ``uint8`` chips ``(N, S, S, 3)`` named ``chips`` and returns
``probabilities`` ``(N, 101)``; the sidecar (``FILE.json``) and the ONNX metadata carry
the preprocessing, age groups, metrics and the file's sha256, which inference checks.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from agedetect.errors import DataError, ModelError
from agedetect.evaluate import WIDENING_SCALES, coverage_by_dataset, smallest_covering_scale
from agedetect.inference import sha256_of
from agedetect.models import ExportWrapper, fold_for_export, member_shares
from agedetect.train import load_checkpoint

OPSET = 17
#: The largest difference in any age's probability allowed between the PyTorch model and
#: its ONNX export. Storing weights as float16 moves them by about 1e-4; a wrong graph
#: (a missed layer, a wrong crop or normalisation) moves them by far more than this.
PARITY_TOLERANCE = 2e-3
#: For int8 weights (``quantize``): the largest mean difference, in years, between the
#: PyTorch model's expected age and the quantized graph's over validation faces. Rounding
#: to int8 moves it by about 0.2 years on the shipped model (a face at most 2); a wrong
#: graph moves it by many years.
QUANTIZED_AGE_TOLERANCE = 0.5
#: Validation faces that set the int8 ranges of each layer (evenly spaced over the split,
#: so every dataset and age is in them).
QUANTIZATION_FACES = 1024
#: The operators stored in int8: each convolution and the heads' dense layers, the ReLU,
#: max pooling and residual additions between them, and the residual pads and the descriptor's
#: resize. With the convolutions alone, each ReLU's output was calibrated apart from the
#: convolution feeding it, so every block paid a dequantize and a quantize between its two
#: convolutions (the model card's int8 section).
QUANTIZED_OPS = ("Conv", "Gemm", "Relu", "MaxPool", "Add", "Pad", "Resize")


def sidecar_path(onnx_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def check_member_weights(weights: Sequence[float], runs: int) -> None:
    """Refuse member weights that are not one positive, finite number per run (ValueError)."""
    if len(weights) != runs:
        raise ValueError(f"{len(weights)} weights for {runs} runs: give one per run")
    if not all(weight > 0 and math.isfinite(weight) for weight in weights):
        raise ValueError(f"weights must be positive numbers, got {list(weights)}")


def load_members(
    checkpoints: str | Path | Sequence[str | Path], mirror: bool | None = None,
    weights: Sequence[float] | None = None,
) -> list[tuple]:
    """``(model, checkpoint)`` for each run; ``mirror`` overrides whether each model
    averages a face with its mirror image (twice the cost, a little more accurate), except
    a ``single_view`` model (the descriptor models: one pass costs about six of a ResNet-10);
    ``weights``, one per run, sets each member's share of the average."""
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if weights is not None:
        check_member_weights(weights, len(paths))
    loaded = [load_checkpoint(path) for path in paths]
    for index, (model, _) in enumerate(loaded):
        if mirror is not None and not model.spec.options.get("single_view"):
            model.spec.options["flip_average"] = mirror
        if weights is not None:
            model.spec.options["ensemble_weight"] = float(weights[index])
    return loaded


def widen_to_coverage(
    loaded: list[tuple], data_dir: str | Path, coverage: float, split: str = "val",
    scales: Sequence[float] = WIDENING_SCALES,
) -> dict:
    """Scale every member's temperature by the smallest factor at which the ensemble's 80%
    interval covers at least ``coverage`` of the ``split`` faces of *every* dataset in
    ``data_dir``, and return what was found.

    Each member's temperature was fitted alone (lowest NLL on pooled validation faces);
    this looks at the ensemble as shipped and at each dataset apart, since a pooled figure
    can hide one dataset whose faces the interval misses. A factor of 1 keeps the members
    as they are: intervals are only ever widened here, never narrowed. Faces unlike every
    training set fall outside more often than validation faces do (bench/shift.py measures
    how much), which is why ``coverage`` can be set above the 80% the interval names.
    """
    from agedetect.ages import decode_ages
    from agedetect.labels import AgeGroups
    from agedetect.train import load_split

    models = [model for model, _ in loaded]
    val = load_split(Path(data_dir), split, models[0].spec.input_size)
    groups = AgeGroups.from_dict(models[0].spec.groups)
    base = [float(model.spec.options.get("temperature", 1.0)) for model in models]
    shares = np.array(member_shares(models))
    with torch.no_grad():
        logits = [
            torch.cat([model.view_logits(torch.from_numpy(val.chips[i : i + 256])) for i in range(0, len(val.chips), 256)], dim=1)
            for model in models
        ]

    def decode_at(scale: float):
        probs = []
        for model, temperature, member_logits in zip(models, base, logits):
            model.spec.options["temperature"] = temperature * scale
            probs.append(model.probabilities_from_logits(member_logits).numpy())
        return decode_ages(np.tensordot(shares, np.stack(probs), axes=1), groups)

    before = coverage_by_dataset(val.ages, decode_at(1.0), val.datasets, groups)
    chosen, after = smallest_covering_scale(scales, decode_at, val.ages, val.datasets, groups, coverage)
    for model, temperature in zip(models, base):  # what gets exported
        model.spec.options["temperature"] = round(temperature * chosen, 4)
    return {"split": split, "coverage_target": coverage, "temperature_scale": float(chosen),
            "coverage_before": before, "coverage_after": after, "met": min(after.values()) >= coverage}


def export_onnx(
    checkpoints: str | Path | Sequence[str | Path], out: str | Path, extra: dict | None = None, half_weights: bool = True,
    mirror: bool | None = None, calibrate_on: str | Path | None = None, coverage: float = 0.8,
    quantize: bool = False, weights: Sequence[float] | None = None,
) -> dict:
    """Write ``out`` (ONNX) and its sidecar; returns the sidecar's content.

    Several checkpoints (trained on the same chip size) export as one graph that averages
    their probabilities: an ensemble costs one call. ``extra`` adds fields to the sidecar
    only (evaluation metrics, typical errors). ``half_weights`` stores weights as float16
    (half the file; computation stays float32). ``mirror``, ``weights``: see :func:`load_members`.
    ``calibrate_on``: a prepared folder whose validation faces :func:`widen_to_coverage`
    widens the interval on, until it covers ``coverage`` in every dataset. ``quantize``: store
    the convolutions and the head as int8, their ranges set on ``calibrate_on``'s validation
    faces (ONNX Runtime's static quantization): about twice as fast per face on a CPU with
    8-bit dot products, a quarter of the file, and ages within :data:`QUANTIZED_AGE_TOLERANCE`.
    """
    import onnx

    if quantize and calibrate_on is None:
        raise ValueError("quantize needs calibrate_on: int8 ranges are set on validation faces")
    loaded = load_members(checkpoints, mirror, weights)
    calibration = widen_to_coverage(loaded, calibrate_on, coverage) if calibrate_on else None
    models = [model for model, _ in loaded]
    sizes = {model.spec.input_size for model in models}
    if len(sizes) != 1:
        raise DataError(f"ensemble members must share one input size, got {sorted(sizes)}")
    spec = models[0].spec
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = fold_for_export(ExportWrapper(*models).eval())
    example = torch.zeros(2, spec.input_size, spec.input_size, 3, dtype=torch.uint8)
    with warnings.catch_warnings():
        # Shapes are fixed per export (one chip size), so traced shape arithmetic is exact.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The exporter's note that it leaves dlib's residual pads (a reversed Slice) for
        # ONNX Runtime to fold when the graph loads, which it does.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(
            wrapper, (example,), str(out), input_names=["chips"], output_names=["probabilities"],
            dynamic_axes={"chips": {0: "faces"}, "probabilities": {0: "faces"}},
            opset_version=OPSET, dynamo=False,
        )
    members = [
        {"name": model.spec.name, "crop": model.spec.crop, "options": model.spec.options,
         "config": state["config"], "epochs": state["epoch"], "val": state["val"]}
        for model, state in loaded
    ]
    meta = {
        "format": "agedetect-age-model/1",
        "name": spec.name,
        "input_size": spec.input_size,
        "framing": "utkface",
        "age_bins": int(wrapper(example).shape[1]),
        "age_groups": spec.groups,
        "members": members,
        "weights": "int8" if quantize else "float16" if half_weights else "float32",
    }
    if calibration:
        meta["interval_calibration"] = calibration
    if quantize:
        _quantize_int8(out, validation_chips(calibrate_on, spec.input_size, QUANTIZATION_FACES))
    graph = onnx.load(str(out))
    if half_weights and not quantize:
        _store_weights_as_float16(graph)
    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = "agedetect", json.dumps(meta)
    onnx.save(graph, str(out))
    # Measured figures go in the sidecar only, so they can be added after evaluation
    # without changing the graph (and its checksum).
    meta = {**meta, **(extra or {}), "sha256": sha256_of(out)}
    sidecar_path(out).write_text(json.dumps(meta, indent=2) + "\n")
    if calibrate_on:
        meta = add_to_sidecar(out, {"interval_by_resolution": fit_resolution_widening(out, calibrate_on, coverage)})
    return meta


#: Chip sides (photo pixels a UTKFace-framed chip spans) at which the widening is measured.
RESOLUTION_SIDES = (20, 28, 40, 56, 80)


def fit_resolution_widening(
    onnx_path: str | Path, data_dir: str | Path, coverage: float, split: str = "val",
    sides: Sequence[int] = RESOLUTION_SIDES, scales: Sequence[float] = tuple(np.round(np.arange(1.0, 4.001, 0.1), 2)),
) -> dict:
    """For faces that span few photo pixels, the factor by which to widen the exported
    model's distribution so its 80% interval still covers ``coverage`` of every dataset's
    ``split`` faces.

    Each validation chip is shrunk to ``side`` pixels and blown up again, as a small face
    in a photo reaches the model (:meth:`agedetect.AgeEstimator.chip`), and the smallest
    factor (:func:`agedetect.ages.widen`) meeting ``coverage`` in every dataset is kept.
    Inference interpolates between the sides by :func:`agedetect.faces.face_resolution`.
    Sides at or above the model's input size lose nothing, so their factor is 1.
    """
    from PIL import Image

    from agedetect.ages import decode_ages, widen
    from agedetect.data import load_manifest
    from agedetect.faces import UTKFACE_CHIP_SIZE
    from agedetect.inference import AgeEstimator

    estimator = AgeEstimator(onnx_path)
    groups = estimator.groups
    rows = load_manifest(data_dir, split=split)
    datasets = np.array([row.dataset for row in rows])
    ages = np.array([row.age for row in rows], dtype=np.float64)
    originals = []
    for row in rows:
        with Image.open(row.path) as image:
            originals.append(image.convert("RGB").resize((UTKFACE_CHIP_SIZE, UTKFACE_CHIP_SIZE), Image.BILINEAR))
    chosen, reached = [], []
    for side in sides:
        if side >= estimator.input_size:
            chosen.append(1.0)
            reached.append(None)
            continue
        chips = np.stack([
            estimator._resize(np.asarray(
                image.resize((side, side), Image.BOX).resize((UTKFACE_CHIP_SIZE,) * 2, Image.BILINEAR)))
            for image in originals
        ])
        probabilities = estimator.chip_probabilities(chips)
        best, covered = smallest_covering_scale(
            scales, lambda scale: decode_ages(widen(probabilities, scale), groups), ages, datasets, groups, coverage)
        chosen.append(best)
        reached.append(covered)
    return {"split": split, "coverage_target": coverage, "chip_px": list(sides), "temperature_scale": chosen,
            "coverage": reached}


def add_to_sidecar(onnx_path: str | Path, fields: dict) -> dict:
    """Merge measured figures (metrics, typical errors) into an exported model's sidecar."""
    path = sidecar_path(onnx_path)
    meta = json.loads(path.read_text()) | fields
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def validation_chips(data_dir: str | Path, size: int, faces: int) -> np.ndarray:
    """``faces`` validation chips of a prepared folder, evenly spaced over its manifest."""
    from agedetect.train import load_split

    chips = load_split(Path(data_dir), "val", size).chips
    return chips[np.unique(np.linspace(0, len(chips) - 1, min(faces, len(chips))).astype(int))]


def _quantize_int8(path: Path, chips: np.ndarray, batch: int = 64) -> None:
    """Rewrite the float32 graph at ``path`` with int8 convolutions and head (QDQ format,
    weights per output channel, activation ranges at the 99.999th percentile of ``chips``'
    values: a few extreme activations would otherwise stretch every range)."""
    import contextlib
    import io
    import logging
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )

    class Chips(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(chips), batch))

        def get_next(self) -> dict | None:
            start = next(self.batches, None)
            return None if start is None else {"chips": chips[start : start + batch]}

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "float32.onnx"
        graph = onnx.load(str(path))
        _unshare_weights(graph)
        onnx.save(graph, str(source))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its advice to pre-process the graph: shapes here are already inferred
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its progress lines, not our output
                quantize_static(
                    str(source), str(path), Chips(), quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.Percentile,
                )
        finally:
            root.setLevel(level)


def _unshare_weights(model) -> None:
    """Give every node its own copy of each weight it shares with another node.

    The exporter stores equal weights once, the others as an Identity of it (the fixed
    shortcut convolutions of :func:`agedetect.models.fold_shortcuts` are equal across blocks
    of the same widths), and the quantizer leaves a shared weight, or one behind an Identity,
    in float32, quantized again on every call.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in [node for node in graph.node if node.op_type == "Identity" and node.input[0] in initializers]:
        copy = numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]), node.output[0])
        graph.initializer.append(copy)
        initializers[copy.name] = copy
        graph.node.remove(node)
    seen: set[str] = set()
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name not in initializers:
                continue
            if name in seen:
                copy = numpy_helper.from_array(numpy_helper.to_array(initializers[name]), f"{name}__{node.name}")
                graph.initializer.append(copy)
                node.input[index] = copy.name
            seen.add(name)


def _store_weights_as_float16(model) -> None:
    """Store large float32 initializers as float16, each behind a Cast back to float32.

    ONNX Runtime folds the casts once at load, so inference runs in float32 as before;
    the file (what users download and the package ships) is half the size.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= 1024:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def check_parity(
    checkpoints: str | Path | Sequence[str | Path], onnx_path: str | Path, chips: np.ndarray, mirror: bool | None = None
) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime probabilities (the
    members' options, a widened temperature included, read back from the exported file)."""
    expected, actual = _both_probabilities(checkpoints, onnx_path, chips, mirror)
    return float(np.abs(expected - actual).max())


def _both_probabilities(
    checkpoints: str | Path | Sequence[str | Path], onnx_path: str | Path, chips: np.ndarray, mirror: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's and ONNX Runtime's probabilities for ``chips``."""
    import onnxruntime as ort

    loaded = load_members(checkpoints, mirror)
    exported = json.loads(sidecar_path(onnx_path).read_text())["members"]
    for (model, _), member in zip(loaded, exported):
        model.spec.options.update(member["options"])
    wrapper = ExportWrapper(*(model for model, _ in loaded)).eval()
    with torch.no_grad():
        expected = torch.cat([wrapper(torch.from_numpy(chips[i : i + 256])) for i in range(0, len(chips), 256)]).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = np.concatenate([session.run(None, {"chips": chips[i : i + 256]})[0] for i in range(0, len(chips), 256)])
    return expected, actual


def verify_export(
    checkpoints: str | Path | Sequence[str | Path], onnx_path: str | Path, mirror: bool | None = None,
    tolerance: float = PARITY_TOLERANCE, faces: int = 4, data_dir: str | Path | None = None,
) -> float:
    """Check the exported graph answers as the PyTorch model does; returns the difference.
    Float weights: the largest gap in any age's probability on ``faces`` random chips, held
    to ``tolerance``. Int8 weights (which round every layer): the mean gap in expected age
    over ``data_dir``'s validation faces, held to :data:`QUANTIZED_AGE_TOLERANCE`. Over it,
    the export (ONNX file and sidecar) is removed and a :class:`ModelError` says so: a
    model that disagrees with itself must not ship."""
    onnx_path = Path(onnx_path)
    meta = json.loads(sidecar_path(onnx_path).read_text())
    size = meta["input_size"]
    if meta.get("weights") == "int8":
        if data_dir is None:
            raise ValueError("an int8 export is verified on validation faces: pass data_dir")
        chips = validation_chips(data_dir, size, QUANTIZATION_FACES)
        expected, actual = _both_probabilities(checkpoints, onnx_path, chips, mirror)
        ages = np.arange(expected.shape[1])
        gap, tolerance, unit = float(np.abs((expected - actual) @ ages).mean()), QUANTIZED_AGE_TOLERANCE, "years of expected age on average"
    else:
        chips = np.random.default_rng(0).integers(0, 256, (faces, size, size, 3), dtype=np.uint8)
        gap, unit = check_parity(checkpoints, onnx_path, chips, mirror=mirror), "in an age's probability"
    if not gap <= tolerance:  # NaN fails too
        onnx_path.unlink(missing_ok=True)
        sidecar_path(onnx_path).unlink(missing_ok=True)
        raise ModelError(
            f"{onnx_path}: PyTorch and ONNX Runtime disagree by up to {gap:.2e} {unit} "
            f"(tolerance {tolerance:.0e}), so the export is wrong; it was removed. Check the ONNX opset and "
            "the export wrapper against the model."
        )
    return gap
