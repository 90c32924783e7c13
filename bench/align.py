"""Check that `agedetect.align` reproduces UTKFace's chip framing, and derive its template.

    .venv/bin/python bench/align.py                 # re-align 500 chips, print figures
    .venv/bin/python bench/align.py --derive 3000   # median landmarks -> UTKFACE_TEMPLATE

Re-aligning a UTKFace chip (detect its face, then `align(chip, face, size=200)`) should give
the chip back. Printed: chips with no face found; the landmark residual after alignment (mean
distance of the five warped landmarks from the template, chip pixels); the similarity's
distance from identity (scale, rotation, shift); and how alike re-aligned and original chips
are (mean absolute difference in 0..255 and Pearson correlation of the gray pixels, over the
whole chip and over its central 120x120), beside the same figures for the original against
itself moved 1 and 3 px, for scale.

--derive runs the detector on chips from a disjoint part of the same shuffle and prints the
median landmark positions in the form faces.py hard-codes them. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from agedetect.faces import UTKFACE_TEMPLATE, align, detect_faces, similarity_transform
from agedetect.images import load_image

CHIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface" / "UTKFace"
#: Chips 0..DERIVE_POOL-1 of the shuffle may derive the template; checks use the rest.
DERIVE_POOL = 5000


def shuffled_chips(folder: Path) -> list[Path]:
    chips = sorted(folder.glob("*.jpg"))
    order = np.random.default_rng(0).permutation(len(chips))
    return [chips[i] for i in order]


def central_face(chip: np.ndarray):
    """The face nearest the chip's centre (UTKFace chips hold one face, centred)."""
    faces = detect_faces(chip)
    if not faces:
        return None
    centre = np.array(chip.shape[1::-1]) / 2
    return min(faces, key=lambda f: np.linalg.norm(np.mean(f.landmarks, axis=0) - centre))


def derive(paths: list[Path]) -> int:
    points, missing = [], 0
    for path in paths:
        face = central_face(load_image(path))
        if face is None:
            missing += 1
        else:
            points.append(face.landmarks)
    landmarks = np.array(points)
    median = np.median(landmarks, axis=0)
    spread = np.percentile(landmarks, 75, axis=0) - np.percentile(landmarks, 25, axis=0)
    print(f"{len(points)} chips with a face, {missing} without, of {len(paths)}")
    print("UTKFACE_TEMPLATE (median x, y; interquartile range in brackets):")
    for name, (x, y), (sx, sy) in zip(
        ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"), median, spread
    ):
        print(f"        [{x:.2f}, {y:.2f}],  # {name}  (IQR {sx:.1f}, {sy:.1f})")
    return 0


def likeness(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference, Pearson correlation of gray levels)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    ga, gb = a.mean(axis=2).ravel(), b.mean(axis=2).ravel()
    flat = ga.std() == 0 or gb.std() == 0
    correlation = float("nan") if flat else float(np.corrcoef(ga, gb)[0, 1])
    return float(np.abs(a - b).mean()), correlation


def shifted(chip: np.ndarray, pixels: int) -> np.ndarray:
    out = np.zeros_like(chip)
    out[pixels:, pixels:] = chip[:-pixels, :-pixels]
    return out


def check(paths: list[Path]) -> int:
    inner = slice(40, 160)
    residuals, scales, angles, shifts = [], [], [], []
    mad_all, cor_all, mad_in, cor_in = [], [], [], []
    base = {1: ([], []), 3: ([], [])}
    missing = 0
    for path in paths:
        chip = load_image(path)
        face = central_face(chip)
        if face is None:
            missing += 1
            continue
        landmarks = np.array(face.landmarks)
        matrix = similarity_transform(landmarks, UTKFACE_TEMPLATE)
        warped = landmarks @ matrix[:, :2].T + matrix[:, 2]
        residuals.append(np.linalg.norm(warped - UTKFACE_TEMPLATE, axis=1).mean())
        scales.append(math.hypot(matrix[0, 0], matrix[1, 0]))
        angles.append(math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])))
        # Where the chip's centre goes: the framing's shift.
        shifts.append(np.linalg.norm(matrix[:, :2] @ [100, 100] + matrix[:, 2] - [100, 100]))
        again = align(chip, face, size=200)
        m, c = likeness(again, chip)
        mad_all.append(m), cor_all.append(c)
        m, c = likeness(again[inner, inner], chip[inner, inner])
        mad_in.append(m), cor_in.append(c)
        for px, (mads, cors) in base.items():
            m, c = likeness(shifted(chip, px)[inner, inner], chip[inner, inner])
            mads.append(m), cors.append(c)

    def q(values: list[float]) -> str:
        return f"median {np.median(values):.2f}, p90 {np.percentile(values, 90):.2f}"

    print(f"{len(paths)} UTKFace chips (not among those that derived the template)")
    print(f"  no face detected:            {missing} ({missing / len(paths):.1%})")
    print(f"  landmark residual (px):      {q(residuals)}   [mean over 5 points, 200 px chip]")
    print(f"  |scale - 1|:                 {q(np.abs(np.array(scales) - 1))}")
    print(f"  |rotation| (degrees):        {q(np.abs(angles))}")
    print(f"  centre shift (px):           {q(shifts)}")
    print(f"  re-aligned vs original, whole chip:   MAD {q(mad_all)};  "
          f"correlation median {np.median(cor_all):.3f}")
    print(f"  re-aligned vs original, central 120:  MAD {q(mad_in)};  "
          f"correlation median {np.median(cor_in):.3f}")
    for px, (mads, cors) in base.items():
        print(f"  (original vs itself moved {px} px, central 120: "
              f"MAD median {np.median(mads):.2f}, correlation {np.median(cors):.3f})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chips", type=Path, default=CHIPS, help="UTKFace chip folder")
    parser.add_argument("-n", type=int, default=500, help="chips to re-align (default 500)")
    parser.add_argument("--derive", type=int, metavar="N", help="derive the template from N chips")
    args = parser.parse_args(argv)
    if not args.chips.is_dir():
        print(f"{args.chips}: no such folder of UTKFace chips", file=sys.stderr)
        return 2
    chips = shuffled_chips(args.chips)
    if args.derive:
        return derive(chips[: min(args.derive, DERIVE_POOL)])
    return check(chips[DERIVE_POOL : DERIVE_POOL + args.n])


if __name__ == "__main__":
    raise SystemExit(main())
