"""bench/other_networks.py reads Human's TF.js age networks layer by layer: its reader, on a
small graph of the same operations, against the same arithmetic written out in NumPy (the
packages themselves are 330 MB from the registries, so CI does not fetch them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from shared_data import ROOT, load_script  # noqa: E402


def _attr_padding(padding: str) -> dict:
    return {"s": base64.b64encode(padding.encode()).decode()}


def _strides(stride: int) -> dict:
    return {"list": {"i": ["1", str(stride), str(stride), "1"]}}


def _same(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """TensorFlow's SAME padding from its definition: enough rows for ceil(size / stride)
    outputs, the odd one after (``x``: H, W, C)."""
    out = -(-x.shape[0] // stride)
    total = max((out - 1) * stride + k - x.shape[0], 0)
    return np.pad(x, ((total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)))


def _conv(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    k = kernel.shape[0]
    padded = _same(x, k, stride)
    out = -(-x.shape[0] // stride)
    y = np.zeros((out, out, kernel.shape[3]))
    for i in range(out):
        for j in range(out):
            patch = padded[i * stride:i * stride + k, j * stride:j * stride + k]  # k, k, C
            y[i, j] = np.einsum("abc,abcd->d", patch, kernel)
    return y


def _depthwise(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    k = kernel.shape[0]
    padded = _same(x, k, 1)
    y = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = np.einsum("abc,abc->c", padded[i:i + k, j:j + k], kernel[:, :, :, 0])
    return y


def _graph(folder: Path, weights: dict[str, np.ndarray], nodes: list[dict]) -> Path:
    """A TF.js graph model in ``folder``: ``weights`` as its constants (float16 ones stored
    quantized, as Human's are), a placeholder ``input_1``, then ``nodes``."""
    manifest, shard = [], b""
    for name, value in weights.items():
        entry = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype == np.int32 else "float32"}
        if value.dtype == np.float16:
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        manifest.append(entry)
        shard += value.tobytes()
    (folder / "tiny.bin").write_bytes(shard)
    head = [{"name": "input_1", "op": "Placeholder"}] + [{"name": name, "op": "Const"} for name in weights]
    (folder / "tiny.json").write_text(json.dumps({"modelTopology": {"node": head + nodes},
                                                  "weightsManifest": [{"paths": ["tiny.bin"], "weights": manifest}]}))
    return folder / "tiny.json"


def _fused(*ops: str) -> dict:
    return {"fused_ops": {"list": {"s": [base64.b64encode(op.encode()).decode() for op in ops]}}}


def _pool(size: int) -> dict:
    return {"ksize": _strides(size), "strides": _strides(size), "padding": _attr_padding("VALID")}


def test_the_tfjs_reader_computes_what_the_graph_says(tmp_path: Path) -> None:
    bench = load_script(ROOT / "bench" / "other_networks.py")
    rng = np.random.default_rng(0)
    weights = {
        "conv/kernel": rng.normal(size=(3, 3, 3, 4)).astype(np.float16),  # stored as float16, as Human's are
        "conv/bias": rng.normal(size=4).astype(np.float32),
        "dw/kernel": rng.normal(size=(3, 3, 4, 1)).astype(np.float32),
        "dense/kernel": rng.normal(size=(4, 5)).astype(np.float32),
        "dense/bias": rng.normal(size=5).astype(np.float32),
        "pool/axes": np.array([1, 2], np.int32),  # Mean's axes (NHWC): the reader pools height and width
    }
    nodes = [
        {"name": "conv", "op": "Conv2D", "input": ["input_1", "conv/kernel"],
         "attr": {"strides": _strides(2), "padding": _attr_padding("SAME")}},
        {"name": "biased", "op": "Add", "input": ["conv", "conv/bias"]},
        {"name": "relu", "op": "Relu", "input": ["biased"]},
        {"name": "dw", "op": "DepthwiseConv2dNative", "input": ["relu", "dw/kernel"],
         "attr": {"strides": _strides(1), "padding": _attr_padding("SAME")}},
        {"name": "pool", "op": "Mean", "input": ["dw", "pool/axes"]},
        {"name": "dense", "op": "_FusedMatMul", "input": ["pool", "dense/kernel", "dense/bias"],
         "attr": _fused("BiasAdd")},
        {"name": "age", "op": "Softmax", "input": ["dense"]},
    ]
    run = bench.tfjs_network(_graph(tmp_path, weights, nodes), "age")

    # 6 px at stride 2: the odd pad goes after. Small values, so the softmax is not one-hot.
    images = rng.uniform(0, 0.3, size=(2, 6, 6, 3)).astype(np.float32)
    got = run(images)

    for image, answer in zip(images.astype(np.float64), got):
        x = np.maximum(_conv(image, weights["conv/kernel"].astype(np.float64), 2) + weights["conv/bias"], 0)
        logits = _depthwise(x, weights["dw/kernel"].astype(np.float64)).mean((0, 1)) @ weights["dense/kernel"] \
            + weights["dense/bias"]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(answer, expected, rtol=1e-4, atol=1e-6)


def test_the_tfjs_reader_names_an_operation_it_does_not_know(tmp_path: Path) -> None:
    bench = load_script(ROOT / "bench" / "other_networks.py")
    run = bench.tfjs_network(_graph(tmp_path, {}, [{"name": "warp", "op": "ResizeBilinear", "input": ["input_1"]}]),
                             "warp")
    with pytest.raises(ValueError, match="warp is a ResizeBilinear"):
        run(np.zeros((1, 4, 4, 3), np.float32))


def test_the_tfjs_reader_keeps_tensorflows_layout_through_ssr_net_and_gear_operations(tmp_path: Path) -> None:
    """SSR-Net's and GEAR's graphs fuse bias and ReLU into convolutions, pool, flatten
    (channels last), slice one column out and reduce with Max: each against NumPy."""
    bench = load_script(ROOT / "bench" / "other_networks.py")
    rng = np.random.default_rng(1)
    weights = {
        "conv/kernel": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
        "conv/bias": rng.normal(size=4).astype(np.float32),
        "dense/kernel": rng.normal(size=(16, 3)).astype(np.float32),
        "dense/bias": rng.normal(size=3).astype(np.float32),
        "max/axes": np.array([1, 2], np.int32),
        "flat/shape": np.array([-1, 16], np.int32),
        "slice/begin": np.array([0, 1], np.int32),
        "slice/end": np.array([0, 2], np.int32),
        "slice/strides": np.array([1, 1], np.int32),
        "expand/dim": np.array([1], np.int32),
        "one": np.ones(1, np.float32),
    }
    nodes = [
        {"name": "conv", "op": "_FusedConv2D", "input": ["input_1", "conv/kernel", "conv/bias"],
         "attr": {"strides": _strides(1), "padding": _attr_padding("VALID"), **_fused("BiasAdd", "Relu")}},
        {"name": "maxpool", "op": "MaxPool", "input": ["conv"], "attr": _pool(2)},
        {"name": "avgpool", "op": "AvgPool", "input": ["conv"], "attr": _pool(2)},
        {"name": "tanh", "op": "Tanh", "input": ["avgpool"]},
        {"name": "product", "op": "Mul", "input": ["maxpool", "tanh"]},
        {"name": "max", "op": "Max", "input": ["product", "max/axes"], "attr": {"keep_dims": {"b": False}}},
        {"name": "flat", "op": "Reshape", "input": ["product", "flat/shape"]},
        {"name": "dense", "op": "_FusedMatMul", "input": ["flat", "dense/kernel", "dense/bias"], "attr": _fused("BiasAdd")},
        {"name": "column", "op": "StridedSlice", "input": ["dense", "slice/begin", "slice/end", "slice/strides"],
         "attr": {"begin_mask": {"i": "1"}, "end_mask": {"i": "1"}, "shrink_axis_mask": {"i": "2"},
                  "ellipsis_mask": {"i": "0"}, "new_axis_mask": {"i": "0"}}},
        {"name": "expanded", "op": "ExpandDims", "input": ["column", "expand/dim"]},
        {"name": "shifted", "op": "AddV2", "input": ["max", "one"]},  # a channel may be 0 everywhere
        {"name": "ratio", "op": "RealDiv", "input": ["expanded", "shifted"]},
        {"name": "out", "op": "Identity", "input": ["ratio"]},
    ]
    run = bench.tfjs_network(_graph(tmp_path, weights, nodes), "out")
    images = rng.uniform(0, 1, size=(2, 6, 6, 3)).astype(np.float32)
    got = run(images)

    assert got.shape == (2, 4)
    for image, answer in zip(images.astype(np.float64), got):
        conv = np.zeros((4, 4, 4))
        for i in range(4):
            for j in range(4):
                conv[i, j] = np.einsum("abc,abcd->d", image[i:i + 3, j:j + 3], weights["conv/kernel"])
        conv = np.maximum(conv + weights["conv/bias"], 0)
        blocks = conv.reshape(2, 2, 2, 2, 4)  # (row block, row, column block, column, channel)
        product = blocks.max((1, 3)) * np.tanh(blocks.mean((1, 3)))
        dense = product.reshape(16) @ weights["dense/kernel"] + weights["dense/bias"]  # channels last, as TF flattens
        np.testing.assert_allclose(answer, dense[1] / (product.max((0, 1)) + 1), rtol=1e-4, atol=1e-6)


def test_gear_classes_are_read_as_human_reads_them() -> None:
    """From the likeliest class's age, toward each other class's by its probability, in
    order: 15, then 30% of the way to 23 (17.4), then 20% of the way to 28 (19.52)."""
    bench = load_script(ROOT / "bench" / "other_networks.py")
    probabilities = np.array([[0.5, 0.3, 0.2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(bench.gear_age(probabilities), [19.52, 65.0])
