"""A damaged, garbled or wrong model is a clear error everywhere it can be loaded: a
``ModelError`` from the API, one line and exit 2 from every command, no server started
on it, and a JSON 503 where a running server's model lacks what an endpoint needs.

tests/test_inference.py covers the core cases on the API (a flipped byte, a truncated
file, a broken or missing sidecar, another network with a matching checksum); this file
adds garbled sidecars, networks that load but are not age models, and every entry point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from agedetect import AgeEstimator
from agedetect.cli import app
from agedetect.errors import ModelError
from agedetect.inference import DEFAULT_MODEL, sha256_of
from agedetect.web import create_app
from servers import ServeProcess
from model_copies import SIDECAR, copy_model, model_without_typical_error



def corrupt_model(folder: Path) -> Path:
    model = copy_model(folder)
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x5A
    model.write_bytes(bytes(data))
    return model


SIDE = int(SIDECAR["input_size"])


def network(path: Path, *, bins: int | None = 101, side: int | None = SIDE, dtype: str = "uint8") -> Path:
    """A small ONNX network with the age model's input and output names that is not an age
    model: ``bins`` values per face, chips of ``side`` pixels. ``bins=None`` gives one value
    per row of the chip, a count the graph cannot declare (it depends on the input)."""
    onnx = pytest.importorskip("onnx", reason="building test networks needs onnx (the train extra)")
    from onnx import TensorProto, helper, numpy_helper

    types = {"uint8": TensorProto.UINT8, "float": TensorProto.FLOAT}
    chips = helper.make_tensor_value_info("chips", types[dtype], ["faces", side or "side", side or "side", 3])
    probabilities = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["faces", bins or "rows"])
    initializers = []
    if bins is None:
        nodes = [helper.make_node("ReduceMean", ["x"], ["logits"], axes=[2, 3], keepdims=0)]
    else:
        weights = np.linspace(-1, 1, 3 * bins, dtype=np.float32).reshape(3, bins)
        initializers.append(numpy_helper.from_array(weights, "w"))
        nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2], keepdims=0),
                 helper.make_node("MatMul", ["mean", "w"], ["logits"])]
    nodes = [helper.make_node("Cast", ["chips"], ["x"], to=TensorProto.FLOAT), *nodes,
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, "not-an-age-model", [chips], [probabilities], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    path.with_suffix(".json").write_text(json.dumps(SIDECAR | {"sha256": sha256_of(path)}))
    return path


# =========================================================================== the API


SIDECAR_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "a JSON list": (lambda p: p.write_text("[1, 2, 3]"), "expected a JSON object"),
    "binary garbage": (lambda p: p.write_bytes(bytes(range(256)) * 4), "unreadable model sidecar"),
    "a folder": (lambda p: (p.unlink(), p.mkdir()), "unreadable model sidecar"),
    "input_size text": (lambda p: p.write_text(json.dumps(SIDECAR | {"input_size": "eighty"})), "bad input_size"),
    "input_size 0": (lambda p: p.write_text(json.dumps(SIDECAR | {"input_size": 0})), "bad input_size"),
    "another framing": (lambda p: p.write_text(json.dumps(SIDECAR | {"framing": "arcface"})), "framing 'arcface'"),
    "garbled age groups": (lambda p: p.write_text(json.dumps(SIDECAR | {"age_groups": {"edges": "x"}})),
                           "age_groups"),
    "another checksum": (lambda p: p.write_text(json.dumps(SIDECAR | {"sha256": "0" * 64})), "checksum mismatch"),
}


@pytest.mark.parametrize("damage", list(SIDECAR_DAMAGE))
def test_a_garbled_sidecar_is_a_model_error(tmp_path: Path, damage: str) -> None:
    model = copy_model(tmp_path)
    make, message = SIDECAR_DAMAGE[damage]
    make(model.with_suffix(".json"))
    with pytest.raises(ModelError, match=message) as raised:
        AgeEstimator(model).load()
    assert str(model.with_suffix(".json").name) in str(raised.value) or model.name in str(raised.value)


def test_a_truncated_model_with_a_matching_checksum_cannot_load(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    model.write_bytes(DEFAULT_MODEL.read_bytes()[: 200_000])
    model.with_suffix(".json").write_text(json.dumps(SIDECAR | {"sha256": sha256_of(model)}))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load the model"):
        AgeEstimator(model).load()


def test_a_folder_named_like_the_model_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "age_model.onnx").mkdir()
    with pytest.raises(ModelError, match="age model not found"):
        AgeEstimator(tmp_path / "age_model.onnx").load()


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("float input", {"dtype": "float"}, "must be uint8 chips"),
        ("10 age bins", {"bins": 10}, "101"),
        ("chips of another size", {"side": SIDE + 16}, str(SIDE + 16)),
    ],
)
def test_a_network_that_is_not_an_age_model_is_refused_on_load(tmp_path: Path, kind: str, options: dict,
                                                               message: str) -> None:
    with pytest.raises(ModelError, match=message):
        AgeEstimator(network(tmp_path / "other.onnx", **options)).load()


def test_a_network_with_undeclared_bins_fails_on_first_use_not_with_nonsense(tmp_path: Path) -> None:
    """Its output size is only known once it runs: one value per row of the chip must be an
    error, not ages between 0 and the chip's side."""
    estimator = AgeEstimator(network(tmp_path / "other.onnx", bins=None, side=None)).load()
    with pytest.raises(ModelError, match="101"):
        estimator.predict_chips(np.zeros((2, SIDE, SIDE, 3), np.uint8))


# =========================================================================== the commands


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return corrupt_model(tmp_path_factory.mktemp("corrupt"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "30_0_0_20170101000000001.jpg.chip.jpg"
    Image.new("RGB", (200, 200), (150, 120, 100)).save(path)
    return path


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "predict": lambda photo, out: ["predict", str(photo)],
    "predict --format json": lambda photo, out: ["predict", str(photo), "--format", "json", "--workers", "2"],
    "evaluate": lambda photo, out: ["evaluate", str(photo.parent), "--json"],
    "audience": lambda photo, out: ["audience", str(photo), "--out", str(out), "--json"],
    "screen": lambda photo, out: ["screen", str(photo), "--json"],
    "gap": lambda photo, out: ["gap", str(photo), "--age", "30", "--json"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_says_so_in_one_line(command: str, corrupt: Path, photo: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*COMMANDS[command](photo, tmp_path / "out"), "--model", str(corrupt)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "checksum mismatch" in result.stderr and str(corrupt) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before any work


def test_serve_refuses_to_start_on_a_corrupt_model(corrupt: Path) -> None:
    with pytest.raises(RuntimeError, match="checksum mismatch") as raised:
        with ServeProcess("--model", str(corrupt)):
            pass
    assert "Traceback" not in str(raised.value)


def test_an_app_on_a_corrupt_model_does_not_start(corrupt: Path) -> None:
    """create_app() used directly (not through agedetect serve): the lifespan loads the
    model before any request is taken, and fails with the ModelError."""
    application = create_app(AgeEstimator(corrupt))

    async def start() -> None:
        async with application.router.lifespan_context(application):
            pass

    with pytest.raises(ModelError, match="checksum mismatch"):
        anyio.run(start)


# =========================================================================== a running server


@pytest.fixture(scope="module")
def server_without_typical_error(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    model = model_without_typical_error(tmp_path_factory.mktemp("bare"))
    with ServeProcess("--model", str(model), "--no-access-log") as server:
        yield server


def test_an_endpoint_the_model_cannot_serve_is_a_json_503(server_without_typical_error: ServeProcess,
                                                          photo: Path) -> None:
    url = server_without_typical_error.url
    files = {"image": ("a.jpg", photo.read_bytes(), "image/jpeg")}
    gap = httpx.post(f"{url}/api/v1/gap", files=files, data={"age": "30"}, timeout=60)
    assert gap.status_code == 503 and gap.headers["content-type"] == "application/json"
    body = gap.json()
    assert body["error"]["code"] == "model_unavailable" and "typical_error" in body["error"]["message"]
    assert "Traceback" not in gap.text
    # The rest of the server is unaffected.
    assert httpx.post(f"{url}/api/v1/predict", files=files, timeout=60).status_code in (200, 422)
