"""Link faces across the frames of a video into one track per person.

A small tracker, enough for the footage agedetect reads (a till camera, a screen's
audience, a clip): faces in consecutive sampled frames are the same person when their
boxes overlap (IoU) or, for faster motion, when the new box is near the old one and of a
similar size. A hard cut (:func:`is_cut`: the picture changes all at once) ends every
track, so the next shot's faces start new ones even where they stand in the same place;
a track not seen for ``max_gap_s`` ends too (the person left). No appearance model: two
people who swap places within one sampled frame, without a cut, would swap tracks.

>>> tracker = Tracker()
>>> tracker.update(0.0, [(10, 10, 50, 50)]), tracker.update(0.2, [(14, 12, 54, 52), (200, 10, 240, 50)])
([0], [0, 1])
>>> tracker.update(0.4, [(16, 12, 56, 52)], cut=True)
[2]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

#: Boxes overlapping at least this much (intersection over union) are one face.
MIN_IOU = 0.3
#: Else a box whose centre moved at most this many box sides, and whose side changed by at
#: most ``MAX_SCALE`` times, is the same face moving fast.
MAX_SHIFT = 0.6
MAX_SCALE = 1.6
#: A track unseen for this long has ended (the person left, or looked away).
MAX_GAP_S = 1.0
#: Side of the grey thumbnail :func:`frame_signature` keeps of a frame.
SIGNATURE_SIZE = (32, 24)
#: A cut: the frame's grey thumbnail differs by this much on average (0..255) *and* its
#: colour histogram by this total variation (0..1) from the frame before. Both must move:
#: a pan or a zoom shifts pixels but keeps the colours, a light switched on changes the
#: colours little per pixel; a new shot changes both.
CUT_PIXEL_DIFFERENCE = 25.0
CUT_HISTOGRAM_DISTANCE = 0.25


@dataclass(frozen=True)
class FrameSignature:
    """What :func:`is_cut` compares: a small grey thumbnail and a colour histogram."""

    thumbnail: np.ndarray  # (24, 32) float32 grey levels
    histogram: np.ndarray  # (3 * 16,) float64, each channel's 16 bins summing to 1


def frame_signature(rgb: np.ndarray) -> FrameSignature:
    """The signature of an ``(H, W, 3)`` uint8 frame (about a millisecond for 640x480)."""
    small = Image.fromarray(rgb).resize((SIGNATURE_SIZE[0] * 2, SIGNATURE_SIZE[1] * 2), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)
    grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    thumbnail = grey.reshape(SIGNATURE_SIZE[1], 2, SIGNATURE_SIZE[0], 2).mean(axis=(1, 3))
    bins = np.minimum((pixels / 16).astype(np.int64), 15).reshape(-1, 3)
    histogram = np.concatenate([np.bincount(bins[:, c], minlength=16) for c in range(3)]).astype(np.float64)
    histogram /= max(1, bins.shape[0])
    return FrameSignature(thumbnail, histogram)


def is_cut(before: FrameSignature, after: FrameSignature) -> bool:
    """Whether ``after`` starts a new shot (a hard cut) after ``before``.

    >>> dark, light = np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 200, np.uint8)
    >>> is_cut(frame_signature(dark), frame_signature(light)), is_cut(frame_signature(dark), frame_signature(dark))
    (True, False)
    """
    pixels = float(np.abs(before.thumbnail - after.thumbnail).mean())
    colours = float(np.abs(before.histogram - after.histogram).sum() / 6.0)  # 3 channels, TV = half the L1
    return pixels > CUT_PIXEL_DIFFERENCE and colours > CUT_HISTOGRAM_DISTANCE


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes.

    >>> iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _near(a: Box, b: Box) -> float | None:
    """How far ``b``'s centre is from ``a``'s, in box sides, if close and alike in size."""
    side_a, side_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if min(side_a, side_b) <= 0 or max(side_a, side_b) / min(side_a, side_b) > MAX_SCALE:
        return None
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    shift = float(np.hypot(dx, dy) / ((side_a + side_b) / 2))
    return shift if shift <= MAX_SHIFT else None


@dataclass
class Track:
    """One person's run of frames: where and when they were last seen."""

    id: int
    start_s: float
    last_s: float
    box: Box
    frames: int = 1


@dataclass
class Tracker:
    """Assigns each face of each frame a track id (0, 1, ... in order of first appearance).

    Call :meth:`update` once per sampled frame, in time order, with that frame's boxes.
    """

    max_gap_s: float = MAX_GAP_S
    active: list[Track] = field(default_factory=list)
    started: int = 0  # tracks started so far (the next one's id); ended tracks are not kept

    def update(self, time_s: float, boxes: Sequence[Box], *, cut: bool = False) -> list[int]:
        """The track id of each box (new ids for new faces). ``cut`` ends every track first."""
        if cut:
            self.active = []
        self.active = [t for t in self.active if time_s - t.last_s <= self.max_gap_s]
        candidates = []  # (rank, track index, box index): overlaps first, then nearness
        for ti, track in enumerate(self.active):
            for bi, box in enumerate(boxes):
                overlap = iou(track.box, box)
                if overlap >= MIN_IOU:
                    candidates.append(((0, -overlap), ti, bi))
                elif (shift := _near(track.box, box)) is not None:
                    candidates.append(((1, shift), ti, bi))
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, ti, bi in sorted(candidates):
            if ti in used_tracks or bi in assigned:
                continue
            used_tracks.add(ti)
            assigned[bi] = ti
            track = self.active[ti]
            track.box, track.last_s, track.frames = tuple(map(float, boxes[bi])), time_s, track.frames + 1
        ids = []
        for bi, box in enumerate(boxes):
            if bi in assigned:
                ids.append(self.active[assigned[bi]].id)
                continue
            track = Track(self.started, time_s, time_s, tuple(map(float, box)))
            self.started += 1
            self.active.append(track)
            ids.append(track.id)
        return ids

    def on_screen(self) -> list[Track]:
        """The tracks that have not ended (seen within ``max_gap_s`` of the last update)."""
        return list(self.active)
