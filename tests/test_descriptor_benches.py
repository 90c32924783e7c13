"""bench/swap_member.py reads each member's answer out of the shipped graph, and
bench/descriptor_levels.py reads the levels the descriptor_levels model's head reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import onnx  # noqa: E402

from agedetect.export import sidecar_path  # noqa: E402
from agedetect.inference import DEFAULT_MODEL  # noqa: E402
from agedetect.models import DESCRIPTOR_LEVELS, create_model  # noqa: E402
from shared_data import ROOT, load_script  # noqa: E402

CHIPS = np.random.default_rng(5).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)


def test_swap_member_finds_each_members_answer_in_the_shipped_graph():
    """The tensors it exposes, weighed by the sidecar's shares, add up to the graph's answer,
    and each is a distribution of its own."""
    bench = load_script(ROOT / "bench" / "swap_member.py")
    members = json.loads(sidecar_path(DEFAULT_MODEL).read_text())["members"]
    graph = onnx.load(str(DEFAULT_MODEL))
    assert len(set(bench.member_outputs(graph, len(members)))) == len(members) == 4
    session = bench.members_exposed(graph, len(members))
    answer, *parts = session.run(None, {"chips": CHIPS})
    weights = np.array([m["options"].get("ensemble_weight", 1.0) for m in members], dtype=np.float64)
    np.testing.assert_allclose(sum(w / weights.sum() * p for w, p in zip(weights, parts)), answer, atol=1e-5)
    for part in parts:
        np.testing.assert_allclose(part.sum(axis=1), 1.0, atol=1e-4)
    # four members, not one found four times; the two heads on one descriptor pass differ too
    assert not np.allclose(parts[0], parts[2], atol=1e-3) and not np.allclose(parts[2], parts[3], atol=1e-3)
    with pytest.raises(SystemExit, match="the sidecar lists 2"):
        bench.member_outputs(onnx.load(str(DEFAULT_MODEL)), 2)


def test_descriptor_levels_bench_reads_what_the_model_reads():
    bench = load_script(ROOT / "bench" / "descriptor_levels.py")
    found = bench.features(CHIPS, batch=3)
    model = create_model("descriptor_levels").eval()
    with torch.no_grad():
        x = torch.nn.functional.interpolate(model.input(torch.from_numpy(CHIPS)), size=(150, 150), mode="bilinear",
                                            align_corners=False)
        read = model.network.body.descriptor_and_levels(x).numpy()
    expected = np.concatenate([found["descriptor"], *(found[f"level {n}"] for n in DESCRIPTOR_LEVELS)], axis=1)
    np.testing.assert_allclose(expected, read, rtol=1e-4, atol=1e-5)
