"""Test clips made from the shared photos: slow pans and zooms over a face, hard cuts
between people, written as real video files (H.264 through PyAV) or as the Y4M a fake
Chromium camera plays. Clips are made in a temporary folder and never kept."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from shared_data import PEOPLE

#: Three photos of one person each, of different ages and backgrounds (shown in this order).
THREE_PEOPLE = ("img12.jpg", "img20.jpg", "img19.jpg")
SIZE = (640, 480)


@dataclass(frozen=True)
class Shot:
    """A shot: a photo, the face to frame in it, and how long it lasts."""

    photo: Path
    face_box: tuple[float, float, float, float]
    seconds: float


def pan_and_zoom(shot: Shot, fps: float, size: tuple[int, int] = SIZE) -> Iterator[np.ndarray]:
    """Frames of a slow pan (a quarter of the face's width) and zoom (the window shrinks
    from 2.8 to 2.2 faces high) over ``shot.photo``, centred near the face."""
    with Image.open(shot.photo) as opened:
        photo = opened.convert("RGB")
    x1, y1, x2, y2 = shot.face_box
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    count = max(1, round(shot.seconds * fps))
    aspect = size[0] / size[1]
    for i in range(count):
        t = i / max(1, count - 1)
        height = side * (2.8 - 0.6 * t)
        width = height * aspect
        centre_x = cx + side * (0.25 * t - 0.125)
        box = (centre_x - width / 2, cy - height / 2, centre_x + width / 2, cy + height / 2)
        yield np.asarray(photo.transform(size, Image.Transform.EXTENT, box, Image.Resampling.BILINEAR))


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 25, codec: str = "libx264",
                pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB frames as a video file (the container from ``path``'s extension)."""
    import av

    with av.open(str(path), "w") as container:
        stream = None
        for rgb in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = pix_fmt
                if codec == "libx264":
                    stream.options = {"preset": "ultrafast", "crf": "20"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int = 10) -> Path:
    """Write RGB frames as YUV4MPEG2 (4:2:0, full-range BT.601): what Chromium's
    ``--use-file-for-fake-video-capture`` plays as a camera, looping."""
    with open(path, "wb") as out:
        header = False
        for rgb in frames:
            h, w = rgb.shape[:2]
            if not header:
                out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                header = True
            r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            out.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                out.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return path


def shots(estimator, names: Sequence[str] = THREE_PEOPLE, seconds: float = 3.0) -> list[Shot]:
    """A shot per photo, framed on its largest face (as the estimator finds it)."""
    result = []
    for name in names:
        faces = estimator.predict(PEOPLE / name)
        result.append(Shot(PEOPLE / name, faces[0].box, seconds))
    return result


def couple_shot(estimator, seconds: float) -> Shot:
    """A shot of ``people/couple.jpg`` that frames both faces and stays inside the photo."""
    photo = PEOPLE / "couple.jpg"
    left, right = sorted(face.box for face in estimator.predict(photo))
    both = (left[0], min(left[1], right[1]), right[2], max(left[3], right[3]))
    with Image.open(photo) as opened:
        height = opened.height
    # pan_and_zoom's window is 2.2 to 2.8 "faces" high: one such face is the pair's span / 2.2.
    side = min(max(both[2] - both[0], both[3] - both[1]) / 2.2, 0.94 * height / 2.8)
    cx, cy = (both[0] + both[2]) / 2, (both[1] + both[3]) / 2
    return Shot(photo, (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), seconds)


def jpeg(rgb: np.ndarray, quality: int = 80) -> bytes:
    """A frame as the page sends it: JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def clip_frames(shot_list: Sequence[Shot], fps: float) -> Iterator[np.ndarray]:
    """The shots one after another, with hard cuts between them."""
    for shot in shot_list:
        yield from pan_and_zoom(shot, fps)
