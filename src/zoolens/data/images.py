"""Reading one photo the way people's folders really hold them: any mode, any orientation, or broken."""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from zoolens.errors import ImageError

# Longest side over shortest side. A 1x100000 PNG is 348 KB, but resizing its short side to 256 px for the
# network makes it 25.6 million pixels (8 GB measured in predict and train, and a killed web server).
# Panoramas reach about 10:1; past this no photo is plausible, and the work is bounded by 256 x 256 x 20 px.
MAX_ASPECT_RATIO = 20

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def file_problem(path: str | os.PathLike) -> str | None:
    """Why a path cannot be read as a photo before opening it (None: a readable, non-empty regular file).

    Checked with stat() first, so a FIFO or device never blocks a scan and a link loop is named as such."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "file not found"
    except PermissionError:
        return "permission denied"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"cannot be read ({error.strerror or type(error).__name__})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not an image"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, device or socket)"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale (PNG/TIFF) scaled to 0..255 instead of being clipped to white."""
    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
    return Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparent pixels become white, like an image viewer shows them, not black."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        return _flatten_alpha(image)
    return image.convert("RGB") if image.mode != "RGB" else image


def open_image(source, min_side: int | None = None) -> Image.Image:
    """Decode a file path, bytes or PIL image into an upright RGB image.

    `min_side` lets JPEGs decode at reduced scale (Pillow's `draft`) when the photo is much larger
    than the network input: a 12-megapixel camera photo then costs a fraction of a full decode.
    Raises ImageError naming the file and the problem.
    """
    if isinstance(source, Image.Image):
        _check_shape("<image>", source.size)
        return to_rgb(ImageOps.exif_transpose(source))
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (str, os.PathLike)):
        problem = file_problem(source)
        if problem:
            raise ImageError(name, problem)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
            with Image.open(handle) as image:
                _check_shape(name, image.size)  # from the header, before any pixel is decoded
                if min_side and image.format == "JPEG":
                    image.draft("RGB", (min_side, min_side))
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageError(name, "is a folder, not an image") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(name, _unidentified_reason(source)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(name, "too many pixels (possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, ZeroDivisionError,
            MemoryError) as error:  # what Pillow's decoders raise on hostile bytes (found by tests/test_fuzz.py)
        raise ImageError(name, f"damaged image ({_short(error)})") from None


def _check_shape(name: str, size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(name, f"no pixels ({width}x{height})")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(name, f"too thin to be a photo ({width}x{height} pixels; at most "
                               f"{MAX_ASPECT_RATIO}:1)")


def _unidentified_reason(source) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "empty data" if not source else "not an image"
    return "empty file (0 bytes)" if Path(source).stat().st_size == 0 else "not an image file"


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]


def find_usable(paths: list[Path], progress: bool = False) -> tuple[list[bool], list[tuple[str, str]]]:
    """Decode every photo once (in threads: Pillow decodes without the GIL); which are usable, and why not."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    def check(path):
        try:
            open_image(path, min_side=64)
            return ""
        except ImageError as error:
            return error.reason

    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = list(tqdm(pool.map(check, paths), total=len(paths), desc="checking photos", unit="img",
                            disable=not progress, leave=False))
    return [not r for r in reasons], [(str(p), r) for p, r in zip(paths, reasons) if r]
