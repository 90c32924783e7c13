"""A batch of image files through the age estimator: the unit of work of every bulk engine.

The local engine (a process pool, :func:`agedetect.files.parallel_map`) and the Ray engine
(an actor pool, :mod:`agedetect.ray_engine`) both hand lists of files to
:func:`predict_files` and turn what it returns into rows with the same functions, so a
file gives the same rows whichever engine ran it.

Every input gives exactly one :class:`FileResult`, whatever goes wrong with it:

- ``status == "faces"``: one or more faces, one row per face;
- ``status == "no_face"``: the image was read but no face was found;
- ``status == "failed"``: the file is missing, unreadable, too large, not a chip
  (``--aligned``) or hit an unexpected error; ``reason`` says which (:func:`failure_reason`).

So the counts reconcile: ``files_seen = files_with_faces + files_without_face + files_failed``,
and a file with several faces is one file seen (and several rows).

>>> r = FileResult("missing.jpg", error=UnreadableImageError("missing.jpg: no such file"))
>>> r.status, r.reason, r.message
('failed', 'unreadable_image', 'no such file')
>>> FileResult("scene.jpg").rows()[0]["error"]
'no face found'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from agedetect.errors import (
    AgeDetectError, ImageTooLargeError, UnreadableImageError, UnreadableVideoError, VideoTooLargeError,
)

if TYPE_CHECKING:
    from agedetect.inference import AgeEstimator, FacePrediction
    from agedetect.video import VideoAnalysis, VideoOptions

#: Keys of a row as ``agedetect predict --format json`` prints it: what the web API answers
#: for a face, with the file and the face's number (1 = the largest, as everywhere).
COLUMNS = ("file", "face", "box", "score", "age", "age_years", "age_interval", "age_group",
           "group_probabilities", "landmarks", "error")
#: Columns of ``agedetect predict --format csv`` (a row of :data:`COLUMNS`, flattened),
#: followed by one ``p_<group>`` column per age group (:func:`csv_columns`).
CSV_COLUMNS = ("file", "face", "x1", "y1", "x2", "y2", "score", "age", "age_years", "age_low", "age_high",
               "age_group", "error")
#: Keys a video's rows add (one row per person: first and last sampled frame, frames
#: fused; ``--per-frame``: the frame's time twice and 1); ``None`` on a photo's rows.
VIDEO_COLUMNS = ("start_s", "end_s", "frames")

#: ``reason`` of an image that was read but had no face in it.
NO_FACE = "no_face"
NO_FACE_MESSAGE = "no face found"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ProcessingError(AgeDetectError):
    """An unexpected failure on one input of a batch (a bug, reported instead of raised)."""


@dataclass(frozen=True)
class FileResult:
    """What one input file gave: its faces (largest first), or why it gave none.

    ``file`` is the input as given (a path, or a ``file://`` URI from a list).
    """

    file: str
    faces: tuple["FacePrediction", ...] = ()
    error: AgeDetectError | None = None
    #: For a video: its people (``faces`` are their fused estimates, in order of first
    #: appearance), when each was on screen, and per-frame faces when asked for.
    video: "VideoAnalysis | None" = None

    @property
    def status(self) -> str:
        """``"faces"``, ``"no_face"`` or ``"failed"``."""
        if self.error is not None:
            return "failed"
        return "faces" if self.faces else NO_FACE

    @property
    def reason(self) -> str | None:
        """``None`` for a file with faces, ``"no_face"``, or a failure code (:func:`failure_reason`)."""
        if self.error is not None:
            return failure_reason(self.error)
        return None if self.faces else NO_FACE

    @property
    def message(self) -> str | None:
        """Why the file gave no face, without the file name the row already carries."""
        if self.error is None:
            return None if self.faces else NO_FACE_MESSAGE
        message = str(self.error)
        # Errors name their input ("path: problem", or "image: ..." for one already loaded).
        for prefix in (f"{self.file}: ", f"{_local_path_or_none(self.file)}: ", "image: "):
            if message.startswith(prefix):
                return message[len(prefix) :]
        return message

    def rows(self, per_frame: bool = False) -> list[dict[str, Any]]:
        """Rows as ``agedetect predict --format json`` prints them: one per face (a video:
        per person, or with ``per_frame`` per face per sampled frame), or one with ``error``
        set for a file without a face. A video's rows add :data:`VIDEO_COLUMNS`."""
        extra = dict.fromkeys(VIDEO_COLUMNS) if self.video is not None else {}
        if not self.faces:
            return [dict.fromkeys(COLUMNS) | extra | {"file": self.file, "error": self.message}]
        if per_frame and self.video is not None:
            return [{"file": self.file, "face": f.person + 1} | f.prediction.to_dict()
                    | {"error": None, "start_s": f.time_s, "end_s": f.time_s, "frames": 1}
                    for f in self.video.frame_faces]
        rows = [{"file": self.file, "face": number} | prediction.to_dict() | {"error": None} | extra
                for number, prediction in enumerate(self.faces, start=1)]
        if self.video is not None:
            for row, person in zip(rows, self.video.people):
                row.update(start_s=person.start_s, end_s=person.end_s, frames=person.frames)
        return rows

    def records(self, group_labels: Sequence[str]) -> list[dict[str, Any]]:
        """Flat records for a table: the :data:`CSV_COLUMNS` of each row, then ``reason``
        (``None`` on face rows) and ``p_<group>``, each face's probability of each age group
        (unrounded, so group shares summed from them match :class:`agedetect.uses.Audience`)."""
        out = []
        for index, row in enumerate(self.rows()):
            record = flat_row(row) | {k: row.get(k) for k in VIDEO_COLUMNS} | {"reason": self.reason}
            probabilities = self.faces[index].group_probabilities if self.faces else {}
            for label in group_labels:
                record[f"p_{label}"] = probabilities.get(label) if self.faces else None
            out.append(record)
        return out


def csv_columns(group_labels: Sequence[str]) -> tuple[str, ...]:
    """The header of ``agedetect predict --format csv``: :data:`CSV_COLUMNS`, then
    ``p_<group>`` for each age group, in age order."""
    return (*CSV_COLUMNS, *(f"p_{label}" for label in group_labels))


def flat_row(row: dict[str, Any], group_labels: Sequence[str] = ()) -> dict[str, Any]:
    """A row of :data:`COLUMNS` as the :data:`CSV_COLUMNS` (``None`` where it has no value),
    with a ``p_<group>`` column for each of ``group_labels``.

    >>> row = flat_row({"file": "a.jpg", "face": 1, "box": [1, 2, 3, 4], "score": 0.99, "age": 30.5,
    ...                 "age_years": 31, "age_interval": [25.0, 36.0], "age_group": "27-35",
    ...                 "group_probabilities": {"0-26": 0.25, "27+": 0.75}, "error": None}, ["0-26", "27+"])
    >>> row["x2"], row["age_years"], row["p_27+"]
    (3, 31, 0.75)
    """
    box = row["box"] or [None] * 4
    low, high = row["age_interval"] or (None, None)
    probabilities = row.get("group_probabilities") or {}
    return {
        "file": row["file"], "face": row["face"], "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
        "score": row.get("score"), "age": row["age"], "age_years": row.get("age_years"), "age_low": low,
        "age_high": high, "age_group": row["age_group"], "error": row["error"],
    } | {f"p_{label}": probabilities.get(label) for label in group_labels}


def predict_files(
    files: Sequence[str | os.PathLike], estimator: "AgeEstimator", *, aligned: bool = False,
    video: "VideoOptions | None" = None, on_progress: Callable[[str, float, float | None], None] | None = None,
) -> list[FileResult]:
    """One :class:`FileResult` per file, in order; a bad file never raises.

    ``files`` are paths or ``file://`` URIs. With ``aligned``, each file is taken as an
    aligned UTKFace-framed face chip (no detection) and the chips go through the model in
    one batch. Otherwise a video (:func:`agedetect.video.is_video`) gives one face per
    person, read with ``video`` options (default :class:`agedetect.video.VideoOptions`);
    ``on_progress(file, seconds read, seconds in all or None)`` follows a video's progress.

    Raises:
        ModelError: only the model itself failing stops a batch.
    """
    names = [os.fspath(f) for f in files]
    if aligned:
        return _predict_chips(names, estimator)
    return [_predict_photo(name, estimator, video, on_progress) for name in names]


def _predict_photo(name: str, estimator: "AgeEstimator", video: "VideoOptions | None" = None,
                   on_progress: Callable[[str, float, float | None], None] | None = None) -> FileResult:
    try:
        path = local_path(name)
        from agedetect.video import VideoOptions, analyse_video, is_video

        if is_video(path):
            progress = None if on_progress is None else (lambda done, total: on_progress(name, done, total))
            analysis = analyse_video(path, estimator, video or VideoOptions(), progress)
            return FileResult(name, tuple(p.prediction for p in analysis.people), video=analysis)
        faces = estimator.predict(path)
    except AgeDetectError as error:
        return FileResult(name, error=error)
    except OSError as error:  # a file that vanished or changed mid-read
        return FileResult(name, error=UnreadableImageError(f"{name}: cannot read ({error.strerror or error})"))
    except Exception as error:  # noqa: BLE001  a bug on one file must not cost the batch its other files
        return FileResult(name, error=ProcessingError(f"{name}: processing error ({type(error).__name__}: {error})"))
    return FileResult(name, tuple(faces))


def _predict_chips(names: list[str], estimator: "AgeEstimator") -> list[FileResult]:
    import numpy as np

    from agedetect.inference import FacePrediction

    results: list[FileResult | None] = [None] * len(names)
    loaded = []  # (index, side of the chip as given, model input)
    for index, name in enumerate(names):
        try:
            rgb = estimator.load_image(local_path(name))
            loaded.append((index, float(rgb.shape[0]), estimator.load_chip(rgb)))
        except AgeDetectError as error:
            results[index] = FileResult(name, error=error)
        except Exception as error:  # noqa: BLE001
            results[index] = FileResult(name, error=ProcessingError(
                f"{name}: processing error ({type(error).__name__}: {error})"))
    if loaded:
        estimates = estimator.predict_chips(np.stack([chip for _, _, chip in loaded]))
        for (index, side, _), estimate in zip(loaded, estimates):
            # The chip is the face: its box is the whole image, no landmarks, certain.
            face = FacePrediction((0.0, 0.0, side, side), (), 1.0, estimate.age, estimate.age_interval,
                                  estimate.age_group, estimate.group_probabilities)
            results[index] = FileResult(names[index], (face,))
    return results  # type: ignore[return-value]


def failure_reason(error: BaseException) -> str:
    """A short, stable reason code for a failed input."""
    if isinstance(error, VideoTooLargeError):
        return "video_too_large"
    if isinstance(error, UnreadableVideoError):
        return "unreadable_video"
    if isinstance(error, ImageTooLargeError):
        return "image_too_large"
    if isinstance(error, UnreadableImageError):
        return "unreadable_image"
    if isinstance(error, ProcessingError):
        return "processing_error"
    if isinstance(error, AgeDetectError):
        return type(error).__name__
    return f"error:{type(error).__name__}"


# ---------------------------------------------------------------------- inputs


def local_path(name: str) -> Path:
    """The local file an input names: a path as is, or a ``file://`` URI.

    Other schemes are refused (per file, as an unreadable input): agedetect reads local or
    mounted shared storage and fetches nothing over a network.

    >>> local_path("file:///data/a%20b.jpg"), local_path("photos/c.jpg")
    (PosixPath('/data/a b.jpg'), PosixPath('photos/c.jpg'))
    """
    match = _SCHEME.match(name)
    if not match:
        return Path(name)
    if match.group(1).lower() != "file":
        raise UnreadableImageError(
            f"{name}: {match.group(1)}:// is not supported (local paths and file:// URIs only; "
            "mount the storage and list its paths)"
        )
    parsed = urlparse(name)
    if parsed.netloc not in ("", "localhost"):
        raise UnreadableImageError(f"{name}: file:// URI of another host ({parsed.netloc}); use file:///path")
    return Path(url2pathname(unquote(parsed.path)))


def _local_path_or_none(name: str) -> str | None:
    try:
        return str(local_path(name))
    except AgeDetectError:
        return None


def read_file_list(list_file: str | os.PathLike) -> list[str]:
    """The inputs a list file names: one path or ``file://`` URI per line, in order.

    Blank lines are skipped and surrounding whitespace stripped; nothing else is
    interpreted, so every other line is one input (duplicates included) and is counted.

    Raises:
        DataError: the list file cannot be read.
    """
    from agedetect.errors import DataError

    try:
        text = Path(list_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{list_file}: cannot read the list of inputs ({error})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
