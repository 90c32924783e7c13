"""AgeEstimator on the shipped model: real photos, real UTKFace chips, damaged model files."""

from __future__ import annotations

import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agedetect import AgeEstimator, FacePrediction
from agedetect.errors import ImageError, ImageTooLargeError, ModelError, NoFaceError, UnreadableImageError
from agedetect.inference import AgeEstimate
from agedetect.labels import parse_utkface_name

from shared_data import CHIPS, NO_FACES, PEOPLE, SHARED, needs_chips, needs_photos  # noqa: E402,F401


@pytest.fixture(scope="module")
def estimator() -> AgeEstimator:
    return AgeEstimator().load()


def check_prediction(p: FacePrediction, groups, width: int, height: int) -> None:
    x1, y1, x2, y2 = p.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert len(p.landmarks) == 5 and all(x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1 for x, y in p.landmarks)
    assert 0.0 < p.score <= 1.0
    assert 0.0 <= p.age <= 100.0
    low, high = p.age_interval
    assert low <= p.age <= high and high - low < 60
    assert list(p.group_probabilities) == list(groups.labels)
    assert sum(p.group_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert p.age_group == groups.label_of(p.age)


@needs_photos
def test_couple_gives_two_adults_largest_first(estimator: AgeEstimator) -> None:
    width, height = Image.open(PEOPLE / "couple.jpg").size
    predictions = estimator.predict(PEOPLE / "couple.jpg")
    assert len(predictions) == 2
    for p in predictions:
        check_prediction(p, estimator.groups, width, height)
        assert 20 <= p.age <= 75  # two adults in their 40s-50s when photographed
    areas = [p.face.area for p in predictions]
    assert areas == sorted(areas, reverse=True)
    d = predictions[0].to_dict()
    assert set(d) == {"box", "score", "age", "age_years", "age_interval", "age_group", "group_probabilities", "landmarks"}
    json.dumps(d)  # JSON-ready


@needs_photos
def test_every_input_kind_gives_the_same_answer(estimator: AgeEstimator) -> None:
    path = PEOPLE / "img1.jpg"
    data = path.read_bytes()
    pil = Image.open(io.BytesIO(data))
    array = np.asarray(Image.open(path).convert("RGB"))
    answers = [estimator.predict(x) for x in (path, str(path), data, pil, array)]
    ages = [[round(p.age, 3) for p in answer] for answer in answers]
    assert len(ages[0]) >= 1 and all(a == ages[0] for a in ages)


@needs_photos
def test_no_face_gives_an_empty_list_and_main_face_raises(estimator: AgeEstimator) -> None:
    scene = NO_FACES / "114740.jpg"
    assert estimator.predict(scene) == []
    with pytest.raises(NoFaceError, match="114740.jpg: no face found"):
        estimator.main_face_probabilities(scene)


def test_bad_images_raise_image_errors(estimator: AgeEstimator, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(UnreadableImageError, match="notes.jpg"):
        estimator.predict(text)
    with pytest.raises(UnreadableImageError, match="no such file"):
        estimator.predict(tmp_path / "missing.jpg")
    small = AgeEstimator(max_pixels=10_000)
    with pytest.raises(ImageTooLargeError):
        small.predict(np.zeros((200, 200, 3), np.uint8))


@needs_chips
def test_chips_are_read_close_to_their_labels_in_batches(estimator: AgeEstimator) -> None:
    # Every 150th chip: 135 faces over all ages, more than two of the model's batches.
    names = sorted(p.name for p in CHIPS.glob("*.chip.jpg"))[::150]
    ages = np.array([parse_utkface_name(n).age for n in names])
    chips = np.stack([estimator.load_chip(CHIPS / n) for n in names])
    assert chips.shape[1:] == (estimator.input_size, estimator.input_size, 3)
    estimates = estimator.predict_chips(chips)
    assert len(estimates) == len(names) and all(isinstance(e, AgeEstimate) for e in estimates)
    predicted = np.array([e.age for e in estimates])
    assert np.abs(predicted - ages).mean() < 9.0  # a useful model; the shipped one measures ~5-6
    assert np.corrcoef(predicted, ages)[0, 1] > 0.8
    # One chip at a time, or 200x200 chips resized inside, give the same answer as the batch.
    alone = estimator.predict_chips(chips[:1])[0]
    raw = estimator.predict_chips([np.asarray(Image.open(CHIPS / names[0]).convert("RGB"))])[0]
    assert alone.age == pytest.approx(predicted[0], abs=1e-3)
    assert raw.age == pytest.approx(predicted[0], abs=1e-3)
    assert estimator.predict_chips(np.zeros((0, 80, 80, 3), np.uint8)) == []


@needs_photos
def test_photo_chip_matches_chip_path(estimator: AgeEstimator) -> None:
    """predict() on a photo and predict_chips() on that face's chip agree: one pipeline."""
    rgb = estimator.load_image(PEOPLE / "img1.jpg")
    [first, *_] = estimator.predict_image(rgb)
    chip = estimator.chip(rgb, first.face)
    assert estimator.predict_chips(chip[None])[0].age == pytest.approx(first.age, abs=1e-4)


def test_not_square_is_not_a_chip(estimator: AgeEstimator) -> None:
    with pytest.raises(ImageError, match="not square"):
        estimator.load_chip(np.zeros((100, 80, 3), np.uint8))


@needs_photos
def test_threads_share_one_estimator(estimator: AgeEstimator) -> None:
    data = (PEOPLE / "couple.jpg").read_bytes()
    expected = [p.age for p in estimator.predict(data)]
    results: list[list[float]] = []

    def work() -> None:
        results.append([p.age for p in estimator.predict(data)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


@needs_photos
def test_max_faces_keeps_the_largest(estimator: AgeEstimator) -> None:
    one = AgeEstimator(max_faces=1).predict(PEOPLE / "couple.jpg")
    both = estimator.predict(PEOPLE / "couple.jpg")
    assert len(one) == 1 and one[0].box == both[0].box


def test_options_are_checked() -> None:
    for bad in ({"threads": 0}, {"threads": True}, {"max_faces": 0}, {"max_pixels": 0}):
        with pytest.raises(ValueError):
            AgeEstimator(**bad)


def test_nothing_loads_until_used(tmp_path: Path) -> None:
    estimator = AgeEstimator(tmp_path / "nowhere.onnx")  # no error yet: loading is lazy
    with pytest.raises(ModelError, match="nowhere.onnx: age model not found"):
        estimator.predict(np.zeros((10, 10, 3), np.uint8))


# --------------------------------------------------------------------------- model integrity


def test_a_copy_of_the_shipped_model_loads(model_copy: Path) -> None:
    assert AgeEstimator(model_copy).load().input_size == AgeEstimator().input_size


def test_corrupt_model_is_refused_by_checksum(model_copy: Path) -> None:
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch.*corrupt or was replaced"):
        AgeEstimator(model_copy).load()


def test_truncated_model_is_refused(model_copy: Path) -> None:
    model_copy.write_bytes(model_copy.read_bytes()[:1000])
    with pytest.raises(ModelError, match="checksum mismatch"):
        AgeEstimator(model_copy).load()


def test_missing_or_broken_sidecar_is_refused(model_copy: Path) -> None:
    sidecar = model_copy.with_suffix(".json")
    sidecar.write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model sidecar"):
        AgeEstimator(model_copy).load()
    sidecar.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelError, match="missing input_size, sha256"):
        AgeEstimator(model_copy).load()
    sidecar.unlink()
    with pytest.raises(ModelError, match="sidecar JSON is missing"):
        AgeEstimator(model_copy).load()


def test_another_network_with_a_matching_checksum_is_not_an_age_model(tmp_path: Path) -> None:
    from agedetect.faces import WEIGHTS
    from agedetect.inference import sha256_of

    other = tmp_path / "pnet.onnx"
    shutil.copy(WEIGHTS / "pnet.onnx", other)
    other.with_suffix(".json").write_text(json.dumps({"input_size": 80, "sha256": sha256_of(other)}))
    with pytest.raises(ModelError, match="not an agedetect age model"):
        AgeEstimator(other).load()
