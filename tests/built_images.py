"""Images made in the tests: one encoder for Pillow pictures and one hand-written PNG
builder (for what Pillow will not write: 48-bit RGB, headers that claim billions of
pixels, real decompression bombs)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Iterator

import numpy as np
from PIL import Image


def encoded(picture: Image.Image | np.ndarray, format: str = "JPEG", **options) -> bytes:
    """``picture`` (a PIL image or an RGB array) saved as ``format`` into bytes."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: Iterator[bytes] | bytes,
        extra: bytes = b"") -> bytes:
    """A PNG written by hand: ``raw_rows`` (filter byte + pixels per row) compressed into one
    IDAT; ``extra`` chunks go between IHDR and IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if isinstance(raw_rows, bytes):
        compressed = zlib.compress(raw_rows, 9)
    else:
        packer = zlib.compressobj(9)
        compressed = b"".join(packer.compress(row) for row in raw_rows) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", compressed)
            + png_chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """An 8-bit grey PNG whose header claims ``width`` x ``height`` pixels in a few dozen
    bytes (a decompression bomb's header, without the pixel data)."""
    return png(width, height, 8, 0, b"\0" * 100)


def png_bomb(side: int = 50_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` black pixels: 2.5 billion pixels in ~0.3 MB."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    return png(side, side, 1, 0, (row for _ in range(side)))
