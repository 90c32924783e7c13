"""Estimate the age of every face in a photo with the shipped ONNX model.

>>> from agedetect import AgeEstimator
>>> estimator = AgeEstimator()            # nothing is loaded yet
>>> # estimator.predict("photo.jpg")      # -> [FacePrediction(box=..., age=34.2, ...), ...]

The model is an ONNX file plus a sidecar JSON (``age_model.json``) that carries what the
model needs to know about its input (chip size, framing), its age groups and its measured
errors, and the file's sha256, checked on load. The pipeline reads top to bottom:
image -> faces (:func:`agedetect.detect_faces`) -> UTKFace-framed chips
(:func:`agedetect.align`) -> age distributions (the model) -> ages
(:func:`agedetect.decode_ages`, the one decode).
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from agedetect.ages import decode_ages, reported_age, whole_years, widen
from agedetect.errors import ImageError, ModelError, NoFaceError
from agedetect.faces import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_THRESHOLD,
    LANDMARK_NAMES,
    UTKFACE_CHIP_SIZE,
    Face,
    align,
    detect_faces,
    face_resolution,
    find_subject,
)
from agedetect.images import MAX_PIXELS, ImageInput, load_image
from agedetect.labels import AgeGroups

if TYPE_CHECKING:  # onnxruntime is imported when the model loads, not on import
    import onnxruntime

# ONNX Runtime 1.30's Linux build records usage events from the moment it is imported: a
# SQLite queue under ~/.cache/Microsoft and session files in $TMPDIR, meant for upload to
# Microsoft. A tool that promises photos touch no disk opts out (a user may opt back in by
# setting the variable to 0). Set before anything here imports onnxruntime.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

#: The model ``agedetect`` ships: ``weights/age_model.onnx`` and its sidecar ``age_model.json``.
DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "age_model.onnx"
INPUT_NAME = "chips"
OUTPUT_NAME = "probabilities"
AGE_BINS = 101
#: Chips per ONNX Runtime call: large enough to batch well, small enough to bound memory.
BATCH_SIZE = 64


@dataclass(frozen=True)
class AgeEstimate:
    """The age read from one face chip.

    Attributes:
        age: the estimate in years: the median of the model's age distribution.
        age_interval: ``(low, high)``, whole years holding the central 80% of that
            distribution: the model's own range for this face.
        age_group: label of the group the whole-year age (:attr:`age_years`) falls in
            (e.g. ``"27-35"``).
        group_probabilities: each group's share of the distribution, in age order.
    """

    age: float
    age_interval: tuple[float, float]
    age_group: str
    group_probabilities: dict[str, float]
    #: The model's probability of each whole age 0..100 (empty when not kept).
    age_distribution: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @property
    def age_years(self) -> int:
        """The estimate as the whole number of years shown (:func:`agedetect.ages.whole_years`)."""
        return int(whole_years(self.age))

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": float(reported_age(self.age)),
            "age_years": self.age_years,
            "age_interval": [round(v, 2) for v in self.age_interval],
            "age_group": self.age_group,
            "group_probabilities": {k: round(v, 4) for k, v in self.group_probabilities.items()},
        }


@dataclass(frozen=True)
class FacePrediction:
    """One face found in an image and its estimated age.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the image as displayed (after EXIF rotation);
            x grows rightwards, y downwards.
        landmarks: five ``(x, y)`` points (see :data:`agedetect.faces.LANDMARK_NAMES`).
        score: the detector's confidence that this is a face, 0..1.
        age, age_interval, age_group, group_probabilities: as in :class:`AgeEstimate`.
    """

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float
    age: float
    age_interval: tuple[float, float]
    age_group: str
    group_probabilities: dict[str, float]
    #: The model's probability of each whole age 0..100 (empty when not kept).
    age_distribution: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, face: Face, estimate: AgeEstimate) -> "FacePrediction":
        return cls(face.box, face.landmarks, face.score, estimate.age, estimate.age_interval,
                   estimate.age_group, estimate.group_probabilities, estimate.age_distribution)

    def probability_under(self, age: int) -> float | None:
        """The model's probability that this person is younger than ``age`` (``None``
        when the distribution was not kept).

        >>> p = FacePrediction((0, 0, 1, 1), (), 1.0, 20.0, (18.0, 22.0), "0-20", {},
        ...                    tuple([0.0] * 17 + [0.25, 0.75] + [0.0] * 82))
        >>> p.probability_under(18), p.probability_under(19)
        (0.25, 1.0)
        """
        if not self.age_distribution:
            return None
        return float(sum(self.age_distribution[: max(0, int(age))]))

    @property
    def face(self) -> Face:
        return Face(self.box, self.landmarks, self.score)

    @property
    def age_years(self) -> int:
        """The estimate as the whole number of years shown: ``age`` rounded, halves up;
        ``age_group`` is this value's group (:func:`agedetect.ages.whole_years`)."""
        return int(whole_years(self.age))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (numbers rounded to what they mean).

        >>> p = FacePrediction((1, 2, 3, 4), ((0, 0),) * 5, 0.99, 30.123, (25.0, 36.0), "27-35",
        ...                    {"0-20": 0.0, "21-26": 0.2, "27-35": 0.8})
        >>> p.to_dict()["age"], p.to_dict()["age_years"], p.to_dict()["box"]
        (30.12, 30, [1.0, 2.0, 3.0, 4.0])
        """
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "age": float(reported_age(self.age)),
            "age_years": self.age_years,
            "age_interval": [round(v, 2) for v in self.age_interval],
            "age_group": self.age_group,
            "group_probabilities": {k: round(v, 4) for k, v in self.group_probabilities.items()},
            "landmarks": {
                name: [round(float(x), 1), round(float(y), 1)]
                for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)
            },
        }


class AgeEstimator:
    """Finds faces and estimates their ages; loads its model on first use, once.

    Args:
        model: an exported ``.onnx`` file with its sidecar ``.json`` beside it; ``None``
            for the model agedetect ships.
        threads: ONNX Runtime threads per call of the age model; ``None`` lets it choose
            (one per core). Use 1 when running one estimator per core.
        min_face_size, threshold, max_side: passed to :func:`agedetect.detect_faces`.
        max_faces: keep at most this many faces per image, the largest first
            (``None``: all).
        max_pixels: larger images are refused (:class:`agedetect.ImageTooLargeError`).

    Thread-safe: one estimator can serve many threads at once.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        threads: int | None = None,
        min_face_size: float = DEFAULT_MIN_FACE_SIZE,
        threshold: float = DEFAULT_THRESHOLD,
        max_side: int | None = DEFAULT_MAX_SIDE,
        max_faces: int | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a whole number >= 1 or None, not {threads!r}")
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1):
            raise ValueError(f"max_faces must be a whole number >= 1 or None, not {max_faces!r}")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or not 0 < max_pixels <= MAX_PIXELS:
            raise ValueError(f"max_pixels must be a whole number in 1..{MAX_PIXELS}, not {max_pixels!r}")
        self.path = Path(model) if model is not None else DEFAULT_MODEL
        self.threads = threads
        self.max_faces = max_faces
        self.max_pixels = int(max_pixels)
        self._detector = {"min_face_size": min_face_size, "threshold": threshold, "max_side": max_side}
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._groups: AgeGroups | None = None
        self._session: onnxruntime.InferenceSession | None = None

    def __repr__(self) -> str:
        return f"AgeEstimator({str(self.path)!r})"

    # ------------------------------------------------------------------ the model

    def load(self) -> "AgeEstimator":
        """Load and verify the model now instead of on first use; returns ``self``.

        Raises:
            ModelError: the model or its sidecar is missing, unreadable, not an agedetect
                age model, or its sha256 differs from the sidecar's (corrupt or replaced).
        """
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._metadata, self._groups, self._session = _load_model(self.path, self.threads)
        return self

    @property
    def metadata(self) -> dict[str, Any]:
        """The sidecar JSON: name, input_size, age_groups, metrics, typical_error, sha256..."""
        self.load()
        return self._metadata  # type: ignore[return-value]

    @property
    def groups(self) -> AgeGroups:
        self.load()
        return self._groups  # type: ignore[return-value]

    @property
    def input_size(self) -> int:
        """Side of the square chip the model takes, in pixels."""
        return int(self.metadata["input_size"])

    def warm_up(self) -> None:
        """Load the age model and the face detector and run each once, so the first real
        request is as fast as the rest (a server calls this before it accepts requests)."""
        self.load()
        detect_faces(np.zeros((64, 64, 3), np.uint8), **self._detector)
        self.chip_probabilities(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))

    # ------------------------------------------------------------------ photos

    def predict(self, image: ImageInput) -> list[FacePrediction]:
        """Every face in ``image`` with its estimated age, largest face first; ``[]`` if none.

        ``image`` is anything :func:`agedetect.load_image` accepts: a path, encoded bytes,
        a PIL image or a NumPy array.

        Raises:
            UnreadableImageError, ImageTooLargeError: the image cannot be used.
            ModelError: the model cannot be loaded.
        """
        return self.predict_image(self.load_image(image))

    def load_image(self, image: ImageInput) -> np.ndarray:
        """``image`` as an RGB array, within this estimator's pixel limit."""
        return load_image(image, max_pixels=self.max_pixels)

    def predict_image(self, rgb: np.ndarray) -> list[FacePrediction]:
        """:meth:`predict` for an ``(H, W, 3)`` RGB ``uint8`` array already loaded."""
        self.load()  # a bad model fails on every image, not only on those with a face
        faces = self.detect(rgb)
        if not faces:
            return []
        estimates = self.decode(self.face_probabilities(rgb, faces))
        return [FacePrediction.of(face, estimate) for face, estimate in zip(faces, estimates)]

    def face_probabilities(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Age distributions ``(N, 101)`` of faces found in ``rgb``, each widened for how few
        photo pixels it spans (:meth:`widening`)."""
        probabilities = self.chip_probabilities(np.stack([self.chip(rgb, face) for face in faces]))
        return widen(probabilities, self.widening([face_resolution(face) for face in faces]))

    def widening(self, resolutions: Sequence[float]) -> np.ndarray:
        """How much to widen the age distribution of faces whose UTKFace-framed chips span
        ``resolutions`` photo pixels: the model's sidecar holds the factor, measured at
        export on validation faces shrunk to those sizes (``interval_by_resolution``); 1
        for faces as sharp as those, and for a model exported without it."""
        curve = self.metadata.get("interval_by_resolution")
        if not curve:
            return np.ones(len(resolutions))
        return np.maximum(1.0, np.interp(resolutions, curve["chip_px"], curve["temperature_scale"]))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """The faces this estimator would read, largest first (``max_faces`` applied)."""
        faces = detect_faces(rgb, sort="area", **self._detector)
        return faces[: self.max_faces] if self.max_faces else faces

    def chip(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The model's input for one face: aligned as UTKFace's 200x200 chips are, then
        resized as training resized those chips, so a photo's face reaches the model
        framed and filtered the way its training faces were."""
        chip = align(rgb, face, size=UTKFACE_CHIP_SIZE)
        return self._resize(chip)

    def main_face_probabilities(self, image: ImageInput) -> np.ndarray:
        """The age distribution ``(101,)`` of the photo's main subject (the face a label
        for the whole photo most likely belongs to).

        Raises:
            NoFaceError: no face was found.
        """
        rgb = self.load_image(image)
        subject, _ = find_subject(rgb, **self._detector)
        if subject is None:
            raise NoFaceError(f"{_name_of(image)}: no face found")
        return self.face_probabilities(rgb, [subject])[0]

    # ------------------------------------------------------------------ aligned chips

    def load_chip(self, image: ImageInput) -> np.ndarray:
        """An already aligned, UTKFace-framed chip (such as a UTKFace ``.chip.jpg``) as the
        model's input, ``(S, S, 3)`` uint8.

        Raises:
            ImageError: the image is not square, so it cannot be an aligned chip.
        """
        rgb = self.load_image(image)
        if rgb.shape[0] != rgb.shape[1]:
            raise ImageError(
                f"{_name_of(image)}: {rgb.shape[1]}x{rgb.shape[0]} is not square, so not an aligned "
                "face chip; leave out --aligned to detect faces in it"
            )
        return self._resize(rgb)

    def predict_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> list[AgeEstimate]:
        """The age of each already aligned chip (no detection): ``(N, H, W, 3)`` uint8 or
        a list of ``(H, W, 3)`` arrays, any square size (resized to the model's)."""
        return self.decode(self.chip_probabilities(chips))

    def chip_probabilities(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The model's age distributions ``(N, 101)`` for aligned chips, in batches."""
        session = self.load()._session
        size = self.input_size
        if isinstance(chips, np.ndarray) and chips.ndim == 4 and chips.shape[1:] == (size, size, 3):
            batch = np.ascontiguousarray(chips, dtype=np.uint8)
        else:
            batch = np.stack([self._resize(np.asarray(chip)) for chip in chips]) if len(chips) else (
                np.zeros((0, size, size, 3), np.uint8))
        if len(batch) == 0:
            return np.zeros((0, AGE_BINS), np.float32)
        parts = [
            session.run([OUTPUT_NAME], {INPUT_NAME: batch[start : start + BATCH_SIZE]})[0]
            for start in range(0, len(batch), BATCH_SIZE)
        ]
        probabilities = np.concatenate(parts)
        if probabilities.shape != (len(batch), AGE_BINS):  # a graph whose output size is not declared
            raise ModelError(
                f"{self.path}: not an agedetect age model (gave {probabilities.shape[1:]} values per face; "
                f"an age model gives {AGE_BINS} probabilities, ages 0..100)"
            )
        return probabilities.astype(np.float32, copy=False)

    def decode(self, probabilities: np.ndarray) -> list[AgeEstimate]:
        """Age distributions ``(N, 101)`` -> one :class:`AgeEstimate` each (via
        :func:`agedetect.decode_ages`)."""
        groups = self.groups
        decoded = decode_ages(probabilities, groups)
        return [
            AgeEstimate(
                age=float(decoded.age[i]),
                age_interval=(float(decoded.low[i]), float(decoded.high[i])),
                age_group=groups.labels[int(decoded.group_index[i])],
                group_probabilities={
                    label: float(p) for label, p in zip(groups.labels, decoded.group_probabilities[i])
                },
                age_distribution=tuple(float(v) for v in probabilities[i]),
            )
            for i in range(len(probabilities))
        ]

    def _resize(self, chip: np.ndarray) -> np.ndarray:
        size = self.input_size
        if chip.ndim != 3 or chip.shape[2] != 3 or chip.dtype != np.uint8:
            raise ValueError(f"a chip is an (H, W, 3) uint8 array, not {chip.dtype} {chip.shape}")
        if chip.shape[:2] == (size, size):
            return chip
        # Pillow's bilinear resize (antialiased when shrinking), as training resized chips.
        return np.asarray(Image.fromarray(chip).resize((size, size), Image.Resampling.BILINEAR))


# ---------------------------------------------------------------------- loading


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_model(path: Path, threads: int | None) -> tuple[dict, AgeGroups, "onnxruntime.InferenceSession"]:
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        hint = "reinstall agedetect" if path == DEFAULT_MODEL else "check the --model path"
        raise ModelError(f"{path}: age model not found; {hint}")
    try:
        metadata = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{sidecar}: the model's sidecar JSON is missing; export the model with "
            "`agedetect export`, which writes both files"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{sidecar}: unreadable model sidecar ({error})") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{sidecar}: not an agedetect model sidecar (expected a JSON object)")
    missing = [key for key in ("input_size", "sha256") if key not in metadata]
    if missing:
        raise ModelError(f"{sidecar}: not an agedetect model sidecar (missing {', '.join(missing)})")
    if metadata.get("framing", "utkface") != "utkface":
        raise ModelError(f"{sidecar}: framing {metadata['framing']!r} is not supported (only 'utkface')")
    try:
        size = int(metadata["input_size"])
        if size < 16:
            raise ValueError
        groups = AgeGroups.from_dict(metadata["age_groups"]) if "age_groups" in metadata else AgeGroups.default()
    except (TypeError, ValueError, KeyError) as error:
        raise ModelError(f"{sidecar}: bad input_size or age_groups ({error})") from None
    metadata["input_size"] = size

    actual = sha256_of(path)
    if actual != str(metadata["sha256"]).lower():
        raise ModelError(
            f"{path}: checksum mismatch (file sha256 {actual[:12]}..., sidecar says "
            f"{str(metadata['sha256'])[:12]}...): the model file is corrupt or was replaced; "
            "reinstall agedetect or re-export the model"
        )

    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # No optimized_model_filepath and no profiling: loading a model writes no files.
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own exception types for bad files
        raise ModelError(f"{path}: ONNX Runtime cannot load the model ({error})") from None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise ModelError(
            f"{path}: not an agedetect age model (needs input {INPUT_NAME!r} and output "
            f"{OUTPUT_NAME!r}, has {sorted(inputs)} -> {sorted(outputs)})"
        )
    if inputs[INPUT_NAME].type != "tensor(uint8)":
        raise ModelError(f"{path}: input {INPUT_NAME!r} must be uint8 chips, is {inputs[INPUT_NAME].type}")
    # Names and types can match by accident; the shapes the graph declares must match too,
    # or a wrong network would answer every face with an error or with ages that mean nothing.
    expected_input = [None, size, size, 3]
    declared_input = list(inputs[INPUT_NAME].shape)
    if len(declared_input) != 4 or any(
        isinstance(have, int) and want is not None and have != want for have, want in zip(declared_input, expected_input)
    ):
        raise ModelError(
            f"{path}: not the model its sidecar describes (input {INPUT_NAME!r} is {declared_input}, "
            f"the sidecar says chips of {size}x{size}x3)"
        )
    declared_output = list(outputs[OUTPUT_NAME].shape)
    if len(declared_output) != 2 or (isinstance(declared_output[1], int) and declared_output[1] != AGE_BINS):
        raise ModelError(
            f"{path}: not an agedetect age model (output {OUTPUT_NAME!r} is {declared_output}; an age "
            f"model gives {AGE_BINS} probabilities per face, ages 0..100)"
        )
    return metadata, groups, session


def _name_of(image: object) -> str:
    return str(image) if isinstance(image, (str, Path)) else "image"
