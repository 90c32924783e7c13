"""Copies of the shipped age model for tests that change it: its ONNX file and sidecar in a
folder of the test's own, the sidecar (or the network) replaced where a test says so.

One helper for every test that needs such a copy; ``conftest.py`` offers it as the
``model_copy`` fixture.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agedetect.inference import DEFAULT_MODEL, sha256_of

#: The shipped model's sidecar as committed.
SIDECAR: dict = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())


def copy_model(folder: Path, sidecar: dict | None = None, onnx: bytes | None = None) -> Path:
    """``folder/age_model.onnx`` and its sidecar: the shipped model, or ``onnx`` (another
    network, with the sidecar's sha256 updated to match it), with the shipped sidecar or
    ``sidecar``. Returns the ONNX path."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "age_model.onnx"
    if onnx is None:
        shutil.copyfile(DEFAULT_MODEL, model)
    else:
        model.write_bytes(onnx)
    metadata = dict(SIDECAR if sidecar is None else sidecar)
    if onnx is not None:
        metadata["sha256"] = sha256_of(model)
    model.with_suffix(".json").write_text(json.dumps(metadata))
    return model


def model_without_typical_error(folder: Path) -> Path:
    """The shipped model with no ``typical_error`` table in its sidecar (``gap`` cannot run)."""
    return copy_model(folder, {key: value for key, value in SIDECAR.items() if key != "typical_error"})


def remapped_model(folder: Path, matrix) -> Path:
    """A copy of the shipped model whose age distribution ``p`` (one row per face) leaves the
    graph as ``p @ matrix`` (a 101 x 101 array): a worse model built from the real one, with
    its sidecar's sha256 updated so it loads as any exported model does. Needs ``onnx``.

    ``shifted(5)`` answers five years older, ``constant(c)`` always answers ``c``,
    ``mixed(w, c)`` pulls every answer toward ``c``."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load(str(DEFAULT_MODEL))
    graph = graph_model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{output}_before_remap" if name == output else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(np.asarray(matrix, np.float32), "remap"))
    graph.node.append(helper.make_node("MatMul", [f"{output}_before_remap", "remap"], [output]))
    onnx.checker.check_model(graph_model)
    return copy_model(folder, onnx=graph_model.SerializeToString())


def shifted(years: int, bins: int = 101):
    """A remap that moves every age ``years`` older (mass past the last bin stays there)."""
    import numpy as np

    matrix = np.zeros((bins, bins))
    for age in range(bins):
        matrix[age, min(age + years, bins - 1)] = 1.0
    return matrix


def constant(distribution):
    """A remap whose answer is ``distribution`` whatever the face (rows of p sum to 1)."""
    import numpy as np

    distribution = np.asarray(distribution, np.float64)
    return np.ones((len(distribution), 1)) @ (distribution / distribution.sum())[None, :]


def mixed(weight: float, distribution):
    """A remap that answers ``(1 - weight) * p + weight * distribution``: a shrunk model."""
    import numpy as np

    return (1 - weight) * np.eye(len(distribution)) + weight * constant(distribution)
