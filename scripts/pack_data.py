"""Pack a prepared data folder into one small file, and unpack it elsewhere: how training
chips travel to a GPU machine that cannot see ../shared (bench/recipe_sweep.py).

    python scripts/pack_data.py pack runs/data runs/data-64.npz [--size 64] [--quality 90]
    python scripts/pack_data.py unpack runs/data-64.npz runs/data

Each chip is resized to ``--size`` pixels as training resizes it and stored as WebP at
``--quality`` (about 1.2 kB a chip at 64 px, 90: the 30,691 chips of UTKFace and
All-Age-Faces in 36 MB; the mean pixel moves by 2 of 255). Unpacking writes lossless PNG
chips and a manifest pointing at them, so training reads exactly what was packed. Chips
packed this way are for exploring recipes; the shipped model trains on the originals.
"""

from __future__ import annotations

import argparse
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

MANIFEST = "manifest.csv"


def encode(path: Path, size: int, quality: int) -> bytes:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size, size):  # as agedetect.train.load_chips resizes
            image = image.resize((size, size), Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, method=6)
        return buffer.getvalue()


def pack(data: Path, out: Path, size: int, quality: int) -> None:
    manifest = (data / MANIFEST).read_text(encoding="utf-8")
    paths = [row["path"] for row in csv.DictReader(io.StringIO(manifest))]
    with ThreadPoolExecutor() as pool:
        blobs = list(pool.map(lambda p: encode(data / p, size, quality), paths))
    offsets = np.cumsum([0] + [len(blob) for blob in blobs])
    np.savez_compressed(out, manifest=np.frombuffer(manifest.encode(), np.uint8), paths=np.array(paths),
             offsets=offsets, blob=np.frombuffer(b"".join(blobs), np.uint8))
    print(f"{out}: {len(paths)} chips at {size} px, {out.stat().st_size / 1e6:.1f} MB")


def unpack(packed: Path, data: Path) -> None:
    archive = np.load(packed)
    offsets, blob = archive["offsets"], archive["blob"]

    def write(index_path: tuple[int, str]) -> None:
        index, path = index_path
        target = data / (path + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(io.BytesIO(blob[offsets[index] : offsets[index + 1]].tobytes())) as image:
            image.convert("RGB").save(target, "PNG", compress_level=1)

    with ThreadPoolExecutor() as pool:
        list(pool.map(write, enumerate(archive["paths"].tolist())))
    rows = list(csv.DictReader(io.StringIO(archive["manifest"].tobytes().decode())))
    with open(data / MANIFEST, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "path": row["path"] + ".png"} for row in rows)
    print(f"{data}: {len(rows)} chips unpacked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("data", type=Path)
    packing.add_argument("out", type=Path)
    packing.add_argument("--size", type=int, default=64)
    packing.add_argument("--quality", type=int, default=90)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("packed", type=Path)
    unpacking.add_argument("data", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.out, args.size, args.quality)
    else:
        unpack(args.packed, args.data)


if __name__ == "__main__":
    main()
