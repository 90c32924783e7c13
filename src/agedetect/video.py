"""Video files: decode, sample frames, track people, fuse each person's age.

``agedetect predict|audience`` read videos (``.mp4 .mov .m4v .webm .mkv .avi``, and
animated GIF and WebP) through :func:`analyse_video`:

1. :func:`sample_frames` decodes in this process with PyAV, whose wheel carries its own
   FFmpeg (no system ffmpeg), and keeps one frame every ``1/fps`` seconds. Frames stream
   through one at a time, so memory does not grow with the video's length; per person only
   an age distribution (101 numbers) per sampled frame is kept.
2. Each sampled frame goes through the photo pipeline (detect, align, estimate).
3. :class:`agedetect.tracking.Tracker` links the faces into one track per person; a hard
   cut starts new tracks.
4. Each person's age comes from all their frames (:func:`agedetect.ages.fuse_ages`, the
   method measured best in ``bench/video.py``). A face seen in a single sampled frame only
   is taken for detector flicker, not a person.

Nothing is written anywhere: frames live in memory for as long as their turn takes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from agedetect.ages import FUSION_METHODS, fuse_ages
from agedetect.errors import AgeDetectError, UnreadableVideoError, VideoTooLargeError
from agedetect.files import VIDEO_EXTENSIONS  # file name endings read as videos
from agedetect.tracking import Tracker, frame_signature, is_cut

if TYPE_CHECKING:
    from agedetect.inference import AgeEstimator, FacePrediction

#: Image formats that may hold an animation: read as a clip when they have several frames.
ANIMATED_EXTENSIONS = frozenset({".gif", ".webp"})
DEFAULT_FPS = 5.0
#: Longest video read by default (an hour of footage is ~18,000 sampled frames at 5 fps).
DEFAULT_MAX_SECONDS = 3600.0
#: Largest frame read: 4K UHD. The detector works on at most 1280 px a side anyway.
MAX_FRAME_PIXELS = 3840 * 2160
#: The fusion ``bench/video.py`` measured best (lowest error, interval still covering).
DEFAULT_FUSION = "mean"
#: Frames a track needs to count as a person (fewer: detector flicker).
MIN_TRACK_FRAMES = 2


@dataclass(frozen=True)
class VideoOptions:
    """How videos are read: sampling rate, limits, fusion, and whether to keep per-frame faces."""

    fps: float = DEFAULT_FPS
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_frame_pixels: int = MAX_FRAME_PIXELS
    fusion: str = DEFAULT_FUSION
    per_frame: bool = False

    def __post_init__(self) -> None:
        for name in ("fps", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a number > 0, not {value!r}")
        if self.fps > 60:
            raise ValueError(f"fps must be at most 60 (frames sampled per second), not {self.fps!r}")
        if isinstance(self.max_frame_pixels, bool) or not isinstance(self.max_frame_pixels, int) or self.max_frame_pixels < 1:
            raise ValueError(f"max_frame_pixels must be a whole number >= 1, not {self.max_frame_pixels!r}")
        if self.fusion not in FUSION_METHODS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSION_METHODS)}")


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its time from the start of the video and its RGB pixels."""

    time_s: float
    rgb: np.ndarray


@dataclass(frozen=True)
class Person:
    """One person of a video: their fused estimate and when they were on screen.

    ``prediction.box`` and ``landmarks`` are those of the frame where their face was
    largest; ``start_s`` and ``end_s`` are the times of their first and last sampled frame.
    """

    prediction: "FacePrediction"
    start_s: float
    end_s: float
    frames: int


@dataclass(frozen=True)
class FrameFace:
    """A face in one sampled frame (``--per-frame``), with the person it belongs to."""

    time_s: float
    person: int
    prediction: "FacePrediction"


@dataclass(frozen=True)
class VideoAnalysis:
    """What one video gave: its people in order of first appearance, and how it was read."""

    people: tuple[Person, ...]
    duration_s: float  # the time of the last sampled frame (0 for one frame)
    frames_sampled: int
    width: int
    height: int
    #: ``(time_s, people on screen)`` at each sampled frame.
    timeline: tuple[tuple[float, int], ...] = field(default=(), repr=False)
    #: Every face of every sampled frame, when asked for (``VideoOptions.per_frame``).
    frame_faces: tuple[FrameFace, ...] = field(default=(), repr=False)


def is_video_name(path: str | os.PathLike) -> bool:
    """Whether a file name ends like a video (animated images are told by their content)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` is read as a video: a video name, or a GIF or WebP with more than one frame.

    >>> is_video("clip.MP4"), is_video("/no/such/anim.gif"), is_video("photo.jpg")
    (True, False, False)
    """
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix not in ANIMATED_EXTENSIONS:
        return False
    from PIL import Image

    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1
    except Exception:  # noqa: BLE001  unreadable: the image loader reports it
        return False


# ---------------------------------------------------------------------- decoding


def sample_frames(path: str | os.PathLike, options: VideoOptions = VideoOptions()) -> Iterator[Frame]:
    """The frames of the video at ``path``, one every ``1/options.fps`` seconds, upright.

    A frame is kept when its timestamp reaches the next sampling time, so a 30 fps video
    sampled at 5 fps gives every sixth frame, and a 2 fps video all of its frames.

    Raises:
        UnreadableVideoError: missing, corrupt or truncated, no video stream, or a codec the
            bundled decoders lack.
        VideoTooLargeError: longer than ``max_seconds``, or frames over ``max_frame_pixels``.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableVideoError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableVideoError(f"{path}: is a folder, not a video")
    if path.stat().st_size == 0:
        raise UnreadableVideoError(f"{path}: the file is empty")
    if path.suffix.lower() in ANIMATED_EXTENSIONS:
        frames = _animated_image_frames(path, options)
    else:
        frames = _container_frames(path, options)
    step = 1.0 / options.fps
    next_time = 0.0
    start: float | None = None
    for time_s, make_rgb in frames:
        if start is None:
            start = time_s
        time_s -= start
        if time_s > options.max_seconds:
            raise VideoTooLargeError(_too_long(path, f"over {options.max_seconds:g} s", options))
        if time_s + 1e-6 >= next_time:
            yield Frame(round(time_s, 3), make_rgb())
            next_time += step * max(1, math.floor((time_s + 1e-6 - next_time) / step) + 1)
    if start is None:
        raise UnreadableVideoError(f"{path}: the video has no frames that can be decoded")


def _too_long(path: Path, length: str, options: VideoOptions) -> str:
    return (f"{path}: the video is {length} long, over the limit of {options.max_seconds:g} s; "
            "cut it, or raise --max-seconds")


def _check_size(path: Path, width: int, height: int, options: VideoOptions) -> None:
    if width * height > options.max_frame_pixels:
        raise VideoTooLargeError(
            f"{path}: frames of {width}x{height} are over the limit of {options.max_frame_pixels / 1e6:.1f} "
            "megapixels; downscale the video first"
        )


def _container_frames(path: Path, options: VideoOptions) -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
    """``(timestamp, make RGB)`` for every decoded frame; pixels are converted only when asked."""
    av = _require_av()
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as error:
        raise UnreadableVideoError(f"{path}: not a video agedetect can read ({_reason(error)})") from None
    with container:
        stream = next((s for s in container.streams if s.type == "video"), None)
        if stream is None:
            raise UnreadableVideoError(f"{path}: the file holds no video stream")
        if stream.codec_context is None or stream.codec_context.codec is None:
            raise UnreadableVideoError(f"{path}: the video's codec cannot be decoded here")
        _check_size(path, stream.codec_context.width or 0, stream.codec_context.height or 0, options)
        declared = _declared_seconds(container, stream)
        if declared is not None and declared > options.max_seconds + 0.5:
            raise VideoTooLargeError(_too_long(path, f"{declared:.0f} s", options))
        stream.thread_type = "AUTO"
        index = 0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        try:
            for frame in container.decode(stream):
                _check_size(path, frame.width, frame.height, options)
                time_s = frame.time if frame.time is not None else index / rate
                index += 1
                yield float(time_s), _converter(frame)
        except av.FFmpegError as error:
            raise UnreadableVideoError(f"{path}: corrupt video after {index} frames ({_reason(error)})") from None
        if index == 0:
            raise UnreadableVideoError(f"{path}: the video has no frames that can be decoded")


def _converter(frame: Any) -> Callable[[], np.ndarray]:
    def convert() -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        # Phones record upright video sideways plus a display rotation (counter-clockwise degrees).
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    return convert


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _animated_image_frames(path: Path, options: VideoOptions) -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
    """Frames of an animated GIF or WebP, timed by their own durations (Pillow decodes them)."""
    from PIL import Image, ImageSequence

    from agedetect.images import load_image

    try:
        image = Image.open(path)
    except Exception as error:  # noqa: BLE001  Pillow raises many types for bad files
        raise UnreadableVideoError(f"{path}: not an animation agedetect can read ({error})") from None
    with image:
        _check_size(path, image.width, image.height, options)
        time_s = 0.0
        try:
            for frame in ImageSequence.Iterator(image):
                yield time_s, (lambda f=frame: load_image(f.copy()))
                time_s += max(10, int(frame.info.get("duration") or 100)) / 1000
        except (OSError, ValueError, EOFError) as error:
            raise UnreadableVideoError(f"{path}: corrupt animation ({error})") from None


def _require_av() -> Any:
    try:
        import av
    except ImportError:
        raise AgeDetectError("reading videos needs PyAV: pip install av (it ships its own FFmpeg)") from None
    return av


# ---------------------------------------------------------------------- people


@dataclass
class _PersonFrames:
    distributions: list[np.ndarray] = field(default_factory=list)
    best: "FacePrediction | None" = None
    start_s: float = 0.0
    end_s: float = 0.0

    def add(self, time_s: float, prediction: "FacePrediction") -> None:
        if not self.distributions:
            self.start_s = time_s
        self.end_s = time_s
        self.distributions.append(np.asarray(prediction.age_distribution, np.float32))
        if self.best is None or _area(prediction.box) > _area(self.best.box):
            self.best = prediction


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def analyse_video(
    path: str | os.PathLike,
    estimator: "AgeEstimator",
    options: VideoOptions = VideoOptions(),
    on_progress: Callable[[float, float | None], None] | None = None,
) -> VideoAnalysis:
    """Every person in the video at ``path``, their fused age and when they were on screen.

    ``on_progress(seconds read, seconds in all or None)`` is called after each sampled frame.

    Raises:
        UnreadableVideoError, VideoTooLargeError: as :func:`sample_frames`.
        ModelError: the model cannot be loaded.
    """
    from agedetect.inference import FacePrediction

    estimator.load()
    total = _duration_hint(path)
    tracker = Tracker()
    frames: dict[int, _PersonFrames] = {}
    seen: list[tuple[float, tuple[int, ...]]] = []  # (time, track ids) per sampled frame
    kept: list[tuple[float, int, FacePrediction]] = []
    previous = None
    width = height = 0
    for frame in sample_frames(path, options):
        height, width = frame.rgb.shape[:2]
        signature = frame_signature(frame.rgb)
        cut = previous is not None and is_cut(previous, signature)
        previous = signature
        faces = estimator.predict_image(frame.rgb)
        ids = tracker.update(frame.time_s, [face.box for face in faces], cut=cut)
        for track_id, face in zip(ids, faces):
            frames.setdefault(track_id, _PersonFrames()).add(frame.time_s, face)
            if options.per_frame:
                kept.append((frame.time_s, track_id, face))
        seen.append((frame.time_s, tuple(ids)))
        if on_progress is not None:
            on_progress(frame.time_s, total)

    # People: tracks of at least MIN_TRACK_FRAMES frames (all tracks if only one frame was
    # sampled), numbered in order of first appearance.
    needed = min(MIN_TRACK_FRAMES, len(seen))
    people_ids = [tid for tid in sorted(frames) if len(frames[tid].distributions) >= needed]
    number = {tid: n for n, tid in enumerate(people_ids)}
    people = []
    for tid in people_ids:
        track = frames[tid]
        decoded, fused = fuse_ages(np.stack(track.distributions), estimator.groups, options.fusion)
        estimate = estimator.decode(fused[None])[0] if options.fusion != "median" else None
        best = track.best  # set by the track's first frame
        if estimate is None:  # median of estimates: its own age and interval, mean group odds
            labels = estimator.groups.labels
            prediction = FacePrediction(
                best.box, best.landmarks, best.score, float(decoded.age[0]),
                (float(decoded.low[0]), float(decoded.high[0])), labels[int(decoded.group_index[0])],
                {label: float(p) for label, p in zip(labels, decoded.group_probabilities[0])},
                tuple(float(v) for v in fused),
            )
        else:
            prediction = FacePrediction.of(best.face, estimate)
        people.append(Person(prediction, track.start_s, track.end_s, len(track.distributions)))
    timeline = tuple((time_s, sum(1 for tid in ids if tid in number)) for time_s, ids in seen)
    frame_faces = tuple(FrameFace(t, number[tid], face) for t, tid, face in kept if tid in number)
    return VideoAnalysis(tuple(people), seen[-1][0] if seen else 0.0, len(seen), width, height, timeline, frame_faces)


def _duration_hint(path: str | os.PathLike) -> float | None:
    """The video's declared length, for progress only (``None`` if unknown or unreadable)."""
    if Path(path).suffix.lower() in ANIMATED_EXTENSIONS:
        return None
    try:
        import av

        with av.open(str(path), metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "video"), None)
            return _declared_seconds(container, stream) if stream is not None else None
    except Exception:  # noqa: BLE001  sample_frames reports what is wrong with the file
        return None


# ---------------------------------------------------------------------- progress from workers

#: Seconds between two progress reports of one video.
REPORT_EVERY_S = 0.5

_sink: dict[str, Any] = {}


def set_progress_queue(channel: Any) -> None:
    """In a worker: send video progress to ``channel`` (``None``: nowhere)."""
    _sink["queue"] = channel
    _sink["last"] = {}


def report_progress(file: str, done: float, total: float | None) -> None:
    """A worker's ``on_progress`` for :func:`agedetect.batch.predict_files`, throttled."""
    channel = _sink.get("queue")
    if channel is None:
        return
    now = time.monotonic()
    if now - _sink["last"].get(file, 0.0) < REPORT_EVERY_S:
        return
    _sink["last"][file] = now
    channel.put((file, done, total))


# ---------------------------------------------------------------------- audience report


def people_per_second(timeline: tuple[tuple[float, int], ...]) -> list[tuple[int, int]]:
    """``(second, most people on screen in it)`` for each whole second of a timeline.

    >>> people_per_second(((0.0, 1), (0.5, 2), (1.2, 0), (3.0, 1)))
    [(0, 2), (1, 0), (2, 0), (3, 1)]
    """
    if not timeline:
        return []
    most: dict[int, int] = {}
    for time_s, count in timeline:
        second = int(time_s)
        most[second] = max(most.get(second, 0), count)
    return [(second, most.get(second, 0)) for second in range(max(most) + 1)]


def write_people_over_time(timelines: dict[str, tuple[tuple[float, int], ...]], out: str | os.PathLike,
                           *, chart: bool = True) -> str:
    """Write ``people_over_time.csv`` (file, second, people on screen) and, with ``chart``
    (it needs matplotlib), ``people.png`` (a line per video) into ``out``; returns the HTML
    section that shows them."""
    import csv
    import html

    out = Path(out)
    with open(out / "people_over_time.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "second", "people"])
        for file, timeline in timelines.items():
            writer.writerows((file, second, people) for second, people in people_per_second(timeline))
    intro = (f"<h2>People on screen over time</h2><p>{len(timelines)} video{'s' * (len(timelines) != 1)}; each "
             f"person is counted once however long they stay. Per second: {html.escape('people_over_time.csv')}.</p>")
    if not chart:
        return intro
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    for file, timeline in list(timelines.items())[:10]:
        points = people_per_second(timeline)
        ax.step([s for s, _ in points], [n for _, n in points], where="post", label=Path(file).name)
    ax.set_xlabel("seconds into the video")
    ax.set_ylabel("people on screen")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(out / "people.png", dpi=110)
    plt.close(fig)
    more = f"<p>The chart draws the first 10 of {len(timelines)} videos.</p>" if len(timelines) > 10 else ""
    return intro + more + '<img src="people.png" alt="people on screen over time" width="650">'
