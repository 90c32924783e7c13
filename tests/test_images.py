"""load_image on every kind of odd, hostile or broken input, each made here with Pillow."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agedetect.errors import ImageTooLargeError, UnreadableImageError
from agedetect.images import MAX_PIXELS, load_image
from built_images import encoded, png_claiming

RED, BLUE = (255, 0, 0), (0, 0, 255)


def halves() -> Image.Image:
    """60 wide, 30 tall: red left half, blue right half."""
    image = Image.new("RGB", (60, 30), BLUE)
    image.paste(RED, (0, 0, 30, 30))
    return image


def test_exif_orientation_is_honoured() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encoded(halves(), "JPEG", quality=95, exif=exif)
    rgb = load_image(data)
    assert rgb.shape == (60, 30, 3)  # now tall
    # Turning clockwise brings the red left half to the top.
    assert np.allclose(rgb[5, 15], RED, atol=40) and np.allclose(rgb[55, 15], BLUE, atol=40)


def test_exif_orientation_is_honoured_for_pil_images_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise"
    image = Image.open(io.BytesIO(encoded(halves(), "JPEG", quality=95, exif=exif)))
    rgb = load_image(image)
    assert rgb.shape == (60, 30, 3)
    assert np.allclose(rgb[55, 15], RED, atol=40) and np.allclose(rgb[5, 15], BLUE, atol=40)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("L", 77, (77, 77, 77)),
        ("1", 1, (255, 255, 255)),
        ("RGB", (10, 20, 30), (10, 20, 30)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("RGBA", (200, 0, 0, 0), (255, 255, 255)),  # fully transparent: the white background
        ("RGBA", (0, 0, 0, 128), (127, 127, 127)),  # half-transparent black over white
        ("LA", (0, 255), (0, 0, 0)),
        ("YCbCr", (76, 85, 255), (254, 0, 0)),
    ],
)
def test_modes_become_rgb(mode: str, colour, expected) -> None:
    rgb = load_image(Image.new(mode, (8, 6), colour))
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    assert np.allclose(rgb[0, 0], expected, atol=2), rgb[0, 0]


def test_palette_images_with_and_without_transparency() -> None:
    image = halves().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    rgb = load_image(encoded(image, "PNG"))
    assert tuple(rgb[0, 0]) == RED and tuple(rgb[0, 59]) == BLUE
    red_index = image.getpixel((0, 0))
    transparent = load_image(encoded(image, "PNG", transparency=red_index))
    assert tuple(transparent[0, 0]) == (255, 255, 255) and tuple(transparent[0, 59]) == BLUE


def test_gray_png_with_a_transparent_level_shows_white_there() -> None:
    image = Image.new("L", (4, 4), 0)
    image.putpixel((0, 0), 200)
    rgb = load_image(encoded(image, "PNG", transparency=0))
    assert tuple(rgb[1, 1]) == (255, 255, 255) and tuple(rgb[0, 0]) == (200, 200, 200)


def test_cmyk_jpeg() -> None:
    rgb = load_image(encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    assert np.allclose(rgb[8, 8], RED, atol=10)


def test_16_bit_png_uses_the_whole_8_bit_range() -> None:
    values = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)  # 12-bit sensor data
    image = Image.fromarray(values)
    rgb = load_image(encoded(image, "PNG"))
    assert rgb.shape == (8, 8, 3)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255  # scaled, not clipped to white
    assert 100 < rgb[4, 0, 0] < 155


def test_float_tiff() -> None:
    values = np.linspace(0, 255, 64, dtype=np.float32).reshape(8, 8)
    rgb = load_image(encoded(Image.fromarray(values, mode="F"), "TIFF"))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 100 < rgb[4, 0, 0] < 155


@pytest.mark.parametrize(
    ("format", "options", "exact"),
    [
        ("PNG", {}, True),
        ("BMP", {}, True),
        ("TIFF", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 90}, False),
        ("GIF", {}, True),
        ("JPEG", {"quality": 95}, False),
    ],
)
def test_formats(format: str, options: dict, exact: bool, tmp_path: Path) -> None:
    image = halves()
    path = tmp_path / f"photo.{format.lower()}"
    path.write_bytes(encoded(image, format, **options))
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes())):
        rgb = load_image(source)
        assert rgb.shape == (30, 60, 3) and rgb.dtype == np.uint8
        if exact:
            assert np.array_equal(rgb, np.asarray(image))
        else:
            assert np.abs(rgb.astype(int) - np.asarray(image)).mean() < 8


def test_decompression_bomb_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(100_000, 100_000))  # 10 gigapixels claimed in ~70 bytes
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="bomb.png"):
        load_image(path)
    assert time.perf_counter() - start < 1.0


def test_image_just_over_our_limit_is_refused_with_its_size() -> None:
    # 11000 x 10000 = 110 MP: over MAX_PIXELS but under Pillow's own bomb error.
    assert 11_000 * 10_000 > MAX_PIXELS
    with pytest.raises(ImageTooLargeError, match="11000x10000"):
        load_image(png_claiming(11_000, 10_000))


def test_max_pixels_applies_to_every_kind_of_input() -> None:
    image = halves()  # 1800 pixels
    for source in (encoded(image, "PNG"), image, np.asarray(image)):
        with pytest.raises(ImageTooLargeError):
            load_image(source, max_pixels=1000)
        assert load_image(source, max_pixels=1800).shape == (30, 60, 3)


def test_truncated_jpeg(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImageError, match="cut.jpg.*(truncated|corrupt)"):
        load_image(path)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("random.jpg", np.random.default_rng(1).bytes(3000), "not an image"),
        ("empty.png", b"", "empty"),
        ("notes.txt", b"my holiday photos\n", "not an image"),
        ("header-only.png", b"\x89PNG\r\n\x1a\n", "not an image|corrupt|truncated"),
    ],
)
def test_unreadable_files_name_the_file(
    name: str, content: bytes, words: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=f"{name}.*({words})"):
        load_image(path)
    with pytest.raises(UnreadableImageError, match=words):
        load_image(content)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="nothing.jpg: no such file"):
        load_image(tmp_path / "nothing.jpg")
    with pytest.raises(UnreadableImageError, match="is a folder"):
        load_image(tmp_path)


def test_unreadable_errors_are_value_errors_and_other_types_are_type_errors() -> None:
    with pytest.raises(ValueError):
        load_image(b"nope")
    with pytest.raises(TypeError, match="int"):
        load_image(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((4, 5), 9, np.uint8), (9, 9, 9)),
        (np.full((4, 5, 1), 9, np.uint8), (9, 9, 9)),
        (np.full((4, 5, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
        (np.full((4, 5, 4), (0, 0, 0, 0), np.uint8), (255, 255, 255)),  # transparent over white
        (np.full((4, 5, 4), (10, 20, 30, 255), np.uint8), (10, 20, 30)),
        (np.full((4, 5, 3), 0.5, np.float32), (127, 127, 127)),  # floats are 0..1
        (np.full((4, 5, 3), np.nan, np.float64), (0, 0, 0)),
        (np.full((4, 5, 3), 2.0, np.float64), (255, 255, 255)),
        (np.full((4, 5), 300, np.int64), (255, 255, 255)),  # other integers are 0..255, clipped
        (np.full((4, 5), -3, np.int32), (0, 0, 0)),
        (np.full((4, 5), 65535, np.uint16), (255, 255, 255)),  # uint16 is 16-bit: 0..65535
        (np.full((4, 5), 32896, np.uint16), (128, 128, 128)),
        (np.ones((4, 5), bool), (255, 255, 255)),
    ],
)
def test_arrays_of_various_shapes_and_dtypes(array: np.ndarray, expected) -> None:
    rgb = load_image(array)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert tuple(rgb[0, 0]) == expected


def test_array_views_are_copied_contiguous() -> None:
    image = np.asarray(halves())
    mirrored = load_image(image[:, ::-1])
    assert mirrored.flags.c_contiguous and tuple(mirrored[0, 0]) == BLUE


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(10, np.uint8),
        np.zeros((4, 5, 2), np.uint8),
        np.zeros((2, 4, 5, 3), np.uint8),
        np.zeros((0, 5, 3), np.uint8),
        np.full((4, 5), "x", dtype=object),
        np.zeros((4, 5), np.complex64),
    ],
)
def test_arrays_that_are_not_images(array: np.ndarray) -> None:
    with pytest.raises(UnreadableImageError, match="array"):
        load_image(array)


def test_broken_pil_image_gives_a_clear_error() -> None:
    data = encoded(halves().resize((400, 400)), "PNG")
    image = Image.open(io.BytesIO(data[: len(data) // 3]))  # lazy: the damage shows on load
    with pytest.raises(UnreadableImageError, match="image"):
        load_image(image)
