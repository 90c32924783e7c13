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
    manifest, shard = [], b""
    for name, value in weights.items():
        entry = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype == np.int32 else "float32"}
        if value.dtype == np.float16:
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        manifest.append(entry)
        shard += value.tobytes()
    (tmp_path / "tiny.bin").write_bytes(shard)
    nodes = [{"name": "input_1", "op": "Placeholder"}] + [{"name": name, "op": "Const"} for name in weights] + [
        {"name": "conv", "op": "Conv2D", "input": ["input_1", "conv/kernel"],
         "attr": {"strides": _strides(2), "padding": _attr_padding("SAME")}},
        {"name": "biased", "op": "Add", "input": ["conv", "conv/bias"]},
        {"name": "relu", "op": "Relu", "input": ["biased"]},
        {"name": "dw", "op": "DepthwiseConv2dNative", "input": ["relu", "dw/kernel"],
         "attr": {"strides": _strides(1), "padding": _attr_padding("SAME")}},
        {"name": "pool", "op": "Mean", "input": ["dw", "pool/axes"]},
        {"name": "dense", "op": "_FusedMatMul", "input": ["pool", "dense/kernel", "dense/bias"],
         "attr": {"fused_ops": {"list": {"s": [base64.b64encode(b"BiasAdd").decode()]}}}},
        {"name": "age", "op": "Softmax", "input": ["dense"]},
    ]
    weights_manifest = [{"paths": ["tiny.bin"], "weights": manifest}]
    (tmp_path / "tiny.json").write_text(json.dumps(
        {"modelTopology": {"node": nodes}, "weightsManifest": weights_manifest}))
    run = bench.tfjs_network(tmp_path / "tiny.json", "age")

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
    (tmp_path / "odd.bin").write_bytes(b"")
    (tmp_path / "odd.json").write_text(json.dumps({
        "modelTopology": {"node": [{"name": "input_1", "op": "Placeholder"},
                                   {"name": "warp", "op": "ResizeBilinear", "input": ["input_1"]}]},
        "weightsManifest": [{"paths": ["odd.bin"], "weights": []}]}))
    run = bench.tfjs_network(tmp_path / "odd.json", "warp")
    with pytest.raises(ValueError, match="warp is a ResizeBilinear"):
        run(np.zeros((1, 4, 4, 3), np.float32))
