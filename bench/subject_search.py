"""What find_subject's third look (a finer search, faces.SUBJECT_RESCUE_CASCADE) finds.

Builds bench/whole_photos.py's *in a scene* stand-in (faces of a prepared split shrunk,
tilted and blended into photos of real scenes, a third grayscale, JPEG quality 60-90),
keeping where each head was placed, and runs ``faces.find_subject`` without and with the
third look. A face counts as the placed one when its box's centre is within a quarter of
the head's side of the head's centre. The third look also runs on ``photos/no-faces``:
every face it gives those is false, and says how often it answers with a wrong face where
the real one cannot be found.

Then the same faces as ``scanned print`` photos (grey or sepia, faded to 50-80% contrast,
grainy, soft; bench/whole_photos.py), searched with all three looks as they are and with the
detector's view of a faded photo stretched (``faces.FADED_SPREAD``), and the photos without
people searched both ways too.

    .venv/bin/python bench/subject_search.py --data runs/data --split val --limit 1000

Prints figures; it is not a test.
"""

from __future__ import annotations

import io
import random
import statistics
import time

import numpy as np
from PIL import Image

import agedetect.faces
from agedetect.faces import find_subject
from agedetect.images import load_image
from whole_photos import PHOTOS, placed_in_a_scene, sample_faces, scanned_print, stand_in_parser


def as_jpeg(photo: Image.Image, rng: random.Random) -> np.ndarray:
    """``photo`` as it reads back from a JPEG at quality 60-90, as bench/whole_photos.py saves it."""
    encoded = io.BytesIO()
    photo.save(encoded, "JPEG", quality=rng.randint(60, 90))
    return load_image(encoded.getvalue())


def main() -> None:
    args = stand_in_parser(__doc__, "val", 1000, scored=False).parse_args()
    rows = sample_faces(args)
    scenes = sorted((PHOTOS / "no-faces").glob("*.jp*g"))
    rng = random.Random(args.seed)  # drawn in the order bench/whole_photos.py's build() draws
    grayscale_photos, missed = 0, []
    for row in rows:
        with Image.open(row.path) as chip:
            photo, head, grayscale = placed_in_a_scene(chip.convert("RGB"), rng, scenes)
        rgb = as_jpeg(photo, rng)
        grayscale_photos += grayscale
        if find_subject(rgb, finer_search=False)[0] is None:
            missed.append((rgb, head, grayscale))

    found = on_the_face = 0
    seconds = []
    for rgb, (x, y, side), _ in missed:
        started = time.perf_counter()
        subject, _ = find_subject(rgb)
        seconds.append(time.perf_counter() - started)
        if subject is not None:
            found += 1
            x1, y1, x2, y2 = subject.box
            on_the_face += np.hypot((x1 + x2) / 2 - x, (y1 + y2) / 2 - y) < side / 4
    false_before = false_after = 0
    for path in scenes:
        rgb = load_image(path)
        before = find_subject(rgb, finer_search=False)[0] is not None
        false_before += before
        false_after += before or find_subject(rgb)[0] is not None

    # Faded prints, searched as they are (no stretch) and as the detector now sees them.
    prints = []
    print_rng = random.Random(args.seed + 1)
    for row in rows:
        with Image.open(row.path) as chip:
            prints.append(as_jpeg(scanned_print(chip.convert("RGB"), print_rng, scenes), print_rng))
    stretch_at = agedetect.faces.FADED_SPREAD
    agedetect.faces.FADED_SPREAD = 0.0  # never stretch
    missed_prints = {"as they are": sum(find_subject(rgb)[0] is None for rgb in prints)}
    false_faces = {"as they are": sum(find_subject(load_image(path))[0] is not None for path in scenes)}
    agedetect.faces.FADED_SPREAD = stretch_at
    missed_prints["stretched when faded"] = sum(find_subject(rgb)[0] is None for rgb in prints)
    false_faces["stretched when faded"] = false_after  # the photos without people, searched so above

    missed_grayscale = sum(grayscale for *_, grayscale in missed)
    colour_photos = len(rows) - grayscale_photos
    print(f"{len(rows)} faces of the {args.split!r} split of {args.data} in scenes, "
          f"{grayscale_photos} of the photos grayscale\n")
    print(f"- first two looks: no face found in {len(missed)} photos ({len(missed) / len(rows):.1%}), "
          f"{missed_grayscale} of them grayscale ({missed_grayscale / max(1, grayscale_photos):.1%} of grayscale "
          f"photos, {(len(missed) - missed_grayscale) / max(1, colour_photos):.1%} of colour ones)")
    print(f"- third look on those: a face in {found}, the placed one in {on_the_face}; "
          f"{(len(missed) - found) / len(rows):.1%} of photos still without a face; "
          f"median {statistics.median(seconds) * 1000 if seconds else 0:.0f} ms for all three looks on a photo it runs on")
    print(f"- photos without people ({len(scenes)}) given a face: {false_before} by the first two looks, "
          f"{false_after} with the third")
    print("- the same faces as scanned prints, all three looks: no face found in "
          + ", ".join(f"{n} ({n / len(rows):.1%}) {name}" for name, n in missed_prints.items())
          + f" (stretched below {stretch_at:g} levels between the 1st and 99th percentile); photos without "
          "people given a face: " + ", ".join(f"{n} {name}" for name, n in false_faces.items()))


if __name__ == "__main__":
    main()
