"""Turn what users have (paths, bytes, PIL images, arrays) into one RGB uint8 array.

Every entry point (CLI, API, web, data preparation) goes through :func:`load_image`, so
EXIF orientation, odd modes and hostile files are handled in one place.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from agedetect.errors import ImageTooLargeError, UnreadableImageError

#: Larger images are refused before decoding: 100 megapixels is a 10000 x 10000 photo,
#: far beyond any camera a face photo comes from, and bounds memory at ~300 MB.
MAX_PIXELS = 100_000_000

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]


def load_image(source: ImageInput, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image as an ``(H, W, 3)`` RGB ``uint8`` array, upright as the camera saw it.

    Accepts a path, encoded bytes, a PIL image or a NumPy array (``HxW`` gray, ``HxWx3``
    RGB or ``HxWx4`` RGBA; float arrays are taken as 0..1, ``uint16`` as 0..65535, other
    integers as 0..255, bools as black/white). EXIF orientation is applied; gray, palette,
    CMYK, 16-bit, float and alpha images are converted to RGB (alpha over white; 16-bit and
    float images are scaled to the range they use).

    Raises:
        UnreadableImageError: the file is missing, unreadable, or not a decodable image.
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.

    >>> load_image(np.zeros((4, 6), dtype=np.uint8)).shape
    (4, 6, 3)
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "image")
        try:  # an opened, not yet loaded image decodes here
            return _to_rgb(source)
        except (OSError, ValueError, SyntaxError, EOFError, IndexError) as error:
            raise UnreadableImageError(
                f"image: corrupt, truncated or unconvertible ({error})"
            ) from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(source)), "uploaded image", max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open_regular_file(path) as handle:
                data = handle.read()
        except FileNotFoundError:
            raise UnreadableImageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UnreadableImageError(f"{path}: is a folder, not an image") from None
        except OSError as error:
            raise UnreadableImageError(f"{path}: cannot read ({error.strerror or error})") from None
        return _decode(io.BytesIO(data), str(path), max_pixels)
    raise TypeError(
        f"load_image takes a path, bytes, a PIL image or a NumPy array, not {type(source).__name__}"
    )


def open_regular_file(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` to read its bytes, refusing anything but a regular file.

    The file is opened without blocking, so a FIFO or device named like an image is
    refused at once instead of stopping the reader forever (a plain ``open`` waits for a
    FIFO's writer); reads are blocking again once it is known to be a regular file.

    Raises:
        FileNotFoundError: no such file (or a dangling symbolic link).
        IsADirectoryError: a folder.
        OSError: anything else that is not a regular file (``strerror`` says what), or
            cannot be opened.
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file: a FIFO, device or socket", str(path))
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _decode(stream: io.BytesIO, name: str, max_pixels: int) -> np.ndarray:
    if stream.getbuffer().nbytes == 0:
        raise UnreadableImageError(f"{name}: the file is empty")
    try:
        # Pillow's own bomb check warns or raises at its own limit; ours is the one enforced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                _check_pixels(image.size, max_pixels, name)
                image.draft("RGB", image.size)  # lets JPEG skip work it doesn't need
                image.load()
                return _to_rgb(image)
    except ImageTooLargeError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name}: too many pixels (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise UnreadableImageError(
            f"{name}: not an image format agedetect can read (JPEG, PNG, WebP, BMP, TIFF, GIF)"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        # Pillow reports truncated and corrupt data through several exception types.
        raise UnreadableImageError(f"{name}: corrupt or truncated image ({error})") from None


def _check_pixels(size: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise UnreadableImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, "
            f"over the limit of {max_pixels / 1e6:.0f}; downscale it first"
        )


def _to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit gray: scale the used range to 8 bits instead of clipping to white.
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size and values.max() > 255 else 255.0
        gray = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        # Float images carry no fixed range: 0..1 if that is all they use, else like 16-bit.
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = values.max() if values.size else 1.0
        top = 1.0 if top <= 1.0 else max(top, 255.0)
        gray = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _from_array(array: np.ndarray, max_pixels: int | None) -> np.ndarray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnreadableImageError(
            f"array of shape {array.shape} is not an image (expected HxW, HxWx3 or HxWx4)"
        )
    kind = array.dtype.kind
    if kind not in "biuf":  # bool, signed, unsigned, float
        raise UnreadableImageError(
            f"array of dtype {array.dtype} is not an image (expected integers, floats or bools)"
        )
    if max_pixels is not None:
        _check_pixels((array.shape[1], array.shape[0]), max_pixels, "array")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        # 16-bit data (as scientific and raw-camera tools give it): 0..65535 -> 0..255.
        array = ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):  # floats are 0..1
            array = np.nan_to_num(array.astype(np.float64)) * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)  # other integers are 0..255
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)
