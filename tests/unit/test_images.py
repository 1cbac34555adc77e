"""Reading photos as people's folders hold them, and naming the ones that cannot be read."""

import io

import numpy as np
import pytest
from PIL import Image

from zoolens.data.images import open_image
from zoolens.errors import ImageError


def _save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def test_greyscale_cmyk_palette_alpha_and_16bit_all_become_rgb(tmp_path):
    rgb = Image.new("RGB", (40, 30), (200, 100, 50))
    files = [
        _save(rgb.convert("L"), tmp_path / "grey.png"),
        _save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg"),
        _save(rgb.convert("P"), tmp_path / "palette.png"),
        _save(rgb.convert("RGBA"), tmp_path / "alpha.png"),
        _save(Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), tmp_path / "deep.png"),
    ]
    palette = np.asarray(Image.open(files[2]).convert("RGB"))  # dithered into the web palette when saved
    # Grey: 0.299 R + 0.587 G + 0.114 B = 124; 16-bit 40000 / 257 = 155.
    expected = [np.full((30, 40, 3), 124), np.full((30, 40, 3), (200, 100, 50)), palette,
                np.full((30, 40, 3), (200, 100, 50)), np.full((30, 40, 3), 155)]
    for path, colours in zip(files, expected):
        image = open_image(path)
        assert image.mode == "RGB" and image.size == (40, 30), path
        # CMYK JPEG within JPEG's rounding (an inverted Adobe CMYK would be 255 - each); the others exact.
        tolerance = 3 if path.suffix == ".jpg" else 0
        assert np.abs(np.asarray(image).astype(int) - colours).max() <= tolerance, (path, np.asarray(image)[0, 0])


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    path = _save(Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)), tmp_path / "half.png")
    value = np.asarray(open_image(path))[0, 0, 0]
    assert 120 <= value <= 135


def test_transparent_pixels_become_white(tmp_path):
    path = _save(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), tmp_path / "clear.png")
    assert tuple(np.asarray(open_image(path))[0, 0]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    assert open_image(path).size == (20, 60)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.jpg", b"", "empty file"),
        ("notes.jpg", b"this is a text file, not a photo\n" * 20, "not an image"),
    ],
)
def test_unusable_files_raise_image_error_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError) as caught:
        open_image(path)
    assert name in str(caught.value) and reason in str(caught.value)


def test_truncated_jpeg_is_reported_as_damaged(tmp_path, animals3):
    photo = next((animals3 / "cats").iterdir()).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(photo[: len(photo) // 2])
    with pytest.raises(ImageError, match="damaged"):
        open_image(path)


def test_a_truncated_jpeg_is_damaged_even_after_a_library_let_pillow_load_truncated_images(tmp_path, animals3,
                                                                                             monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing megadetector's utilities does
    photo = next((animals3 / "cats").iterdir()).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(photo[: len(photo) // 2])
    with pytest.raises(ImageError, match="damaged"):
        open_image(path)


def test_png_with_jpg_extension_still_reads(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10), "blue").save(buffer, format="PNG")
    path = tmp_path / "actually_png.jpg"
    path.write_bytes(buffer.getvalue())
    assert open_image(path).size == (10, 10)


def test_large_jpeg_decodes_at_reduced_size_with_draft(tmp_path):
    path = _save(Image.new("RGB", (4000, 3000), "green"), tmp_path / "big.jpg", quality=80)
    image = open_image(path, min_side=256)
    assert image.size == (500, 375)  # decoded at 1/8 scale, the smallest that keeps the short side >= 256
    assert open_image(path).size == (4000, 3000)  # asked for no size: the whole photo


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1), (10_000, 3)])
def test_a_thin_picture_is_refused_from_its_header_with_bounded_memory(tmp_path, size):
    """348 KB on disk, 25.6 million pixels once its short side is resized for the network: refused before any
    pixel is decoded. Memory is measured in a child process with an address-space limit of 1.5 GB."""
    import subprocess
    import sys

    path = tmp_path / "thin.png"
    Image.new("L", size, 128).save(path)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1500 << 20, 1500 << 20)); "
            "from zoolens.data.images import open_image; from zoolens.errors import ImageError\n"
            "try:\n    open_image(sys.argv[1], min_side=256)\nexcept ImageError as e:\n    print(e.reason)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"too thin to be a photo ({size[0]}x{size[1]} pixels; at most 20:1)"


def test_a_panorama_is_still_read(tmp_path):
    path = tmp_path / "panorama.jpg"
    Image.new("RGB", (4000, 400), (10, 120, 30)).save(path)
    assert open_image(path, min_side=256).size == (4000, 400)
