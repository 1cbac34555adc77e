"""Reading one photo the way people's folders really hold them: any mode, any orientation, or broken."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
import struct
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from zoolens.errors import ImageError

# Longest side over shortest side. A 1x100000 PNG is 348 KB, but resizing its short side to 256 px for the
# network makes it 25.6 million pixels (8 GB measured in predict and train, and a killed web server).
# Panoramas reach about 10:1; past this no photo is plausible, and the work is bounded by 256 x 256 x 20 px.
MAX_ASPECT_RATIO = 20

# The photo formats zoolens opens, decided by the bytes, wherever a photo is read (CLI, folders, apps). Pillow's
# other readers (EPS starts Ghostscript; PSD, FITS, ...) are never reached, whatever a file is named.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF")
# The names a folder scan takes as photos: the same formats (a file named otherwise is listed as skipped).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".avif"}
)
# No photo file is larger: an 89-megapixel (Pillow's bomb limit) 16-bit RGBA TIFF without compression is 712 MB,
# a 50-megapixel one 400 MB, a camera's JPEG 5-40 MB. Refused from stat(), before a byte is read: a 20 GB
# sparse .jpg was read whole (and killed) by `data inspect`.
MAX_FILE_BYTES = 1024 * 1024 * 1024
# Bytes a decoder may read beyond the header, per pixel the header declares (uncompressed 16-bit RGBA is 8),
# plus room for metadata. A short JPEG header followed by gigabytes of zeros was decoded for minutes.
MAX_BYTES_PER_PIXEL = 8
METADATA_ALLOWANCE = 16 * 1024 * 1024
# Bytes read before the header has told the size: EXIF, ICC and XMP segments take well under 1 MB. Pillow's JPEG
# reader looks for the next marker one byte at a time, 2.3 s for 19 MB of zeros, so this bounds that scan too.
HEADER_ALLOWANCE = 4 * 1024 * 1024
# Wall-clock seconds one decode may take: a 12-megapixel JPEG decodes in 0.10 s here (benchmarks/hostile_pictures.py).
MAX_DECODE_SECONDS = 30.0


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def reading_problem(error: OSError, path) -> str:
    """What an OSError from stat() or listing a folder means, in words."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno == errno.ENAMETOOLONG:
        return f"path too long for the file system ({len(os.fsencode(path))} bytes)"
    return f"cannot be read ({error.strerror or type(error).__name__})"


def _too_large(size: int) -> str:
    return f"too large for a photo ({size / 2**30:.1f} GiB; at most {MAX_FILE_BYTES / 2**30:g} GiB)"


def file_problem(path: str | os.PathLike) -> str | None:
    """Why a path cannot be read as a photo before opening it (None: a readable, non-empty regular file).

    Checked with stat() first, so a FIFO or device never blocks a scan and a link loop is named as such."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "file not found"
    except OSError as error:
        return reading_problem(error, path)
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not an image"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, device or socket)"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if info.st_size > MAX_FILE_BYTES:
        return _too_large(info.st_size)
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a photo file, read in blocks (never whole), after `file_problem`: a FIFO or /dev/zero would block
    or never end, a 20 GB sparse file is refused unread. Raises ImageError."""
    problem = file_problem(path)
    if problem:
        raise ImageError(path, problem)
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise ImageError(path, f"cannot read ({error.strerror or error})") from None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale (PNG/TIFF) scaled to 0..255 instead of being clipped to white; a float image
    (TIFF mode F) of values 0..1 scaled by 255, one with NaN or infinities refused (it has no true colours)."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        if not np.isfinite(pixels).all():
            raise ImageError("<image>", "float image with NaN or infinite pixel values")
        brightest = pixels.max(initial=0.0)
        top = 1.0 if brightest <= 1.0 else 65535.0 if brightest > 255 else 255.0
    else:
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


class DecodeGivenUp(Exception):
    """A decoder read far more than the photo's pixels can hold, or for too long: damaged or padded with junk."""


class GuardedReader:
    """The file a decoder reads through: it gives up once the decoder has read more than the declared pixels
    can take, or has run past its time. Pillow's decoders pull blocks of 64 KB through `read`, so this sees
    every block; Pillow itself has no bound on either (a 600-byte JPEG header and gigabytes of zeros)."""

    def __init__(self, raw, time_limit: float):
        self.raw = raw
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self.limit = raw.tell() + HEADER_ALLOWANCE
        self.header_read = False

    def allow(self, size: tuple[int, int]) -> None:
        self.limit = self.raw.tell() + MAX_BYTES_PER_PIXEL * size[0] * size[1] + METADATA_ALLOWANCE
        self.header_read = True

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise DecodeGivenUp(f"decoding took over {self.time_limit:g} s (damaged, or padded with junk); given up")
        if self.raw.tell() > self.limit:
            if not self.header_read:
                raise DecodeGivenUp(f"no image header in its first {HEADER_ALLOWANCE >> 20} MB (damaged, or padded "
                                    "with junk)")
            raise DecodeGivenUp("far more data than its pixels can hold (damaged, or padded with junk)")
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readline(self, size: int = -1) -> bytes:
        return self.raw.readline(size)

    def close(self) -> None:  # the caller closes the file it opened
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _raw_file(source):
    """The bytes of `source` as a file to read: bytes in memory, a path opened (and closed after), or an open file
    (a web framework's upload) left open for its owner."""
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source)
    if hasattr(source, "read"):
        return contextlib.nullcontext(source)
    return open(source, "rb")


def open_image(source, min_side: int | None = None, time_limit: float = MAX_DECODE_SECONDS) -> Image.Image:
    """Decode a file path, bytes, an open binary file or a PIL image into an upright RGB image.

    `min_side` lets JPEGs decode at reduced scale (Pillow's `draft`) when the photo is much larger
    than the network input: a 12-megapixel camera photo then costs a fraction of a full decode.
    Only PHOTO_FORMATS are opened; a decode is given up past `time_limit` seconds or past the bytes its pixels
    can hold. Raises ImageError naming the file and the problem.
    """
    if isinstance(source, Image.Image):
        _check_shape("<image>", source.size)
        return to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, memoryview):
        source = source.tobytes()
    name = source_label(source)
    if isinstance(source, (str, os.PathLike)):
        problem = file_problem(source)
        if problem:
            raise ImageError(name, problem)
    elif isinstance(source, (bytes, bytearray)) and len(source) > MAX_FILE_BYTES:
        raise ImageError(name, _too_large(len(source)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _raw_file(source) as raw, GuardedReader(raw, time_limit) as handle, \
                    Image.open(handle, formats=PHOTO_FORMATS) as image:
                _check_shape(name, image.size)  # from the header, before any pixel is decoded
                handle.allow(image.size)
                if min_side and image.format == "JPEG":
                    image.draft("RGB", (min_side, min_side))
                # A library imported beside zoolens can turn this on for the whole process (megadetector's
                # visualization_utils does, on import): Pillow then pads a truncated photo with grey, silently.
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except ImageError as error:
        raise ImageError(name, error.reason) from None
    except DecodeGivenUp as error:
        raise ImageError(name, str(error)) from None
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


def source_label(source) -> str:
    """What an error calls a photo: its path, an open file's name (an upload's), `<bytes>` or `<image>`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, Image.Image):
        return "<image>"
    if hasattr(source, "read"):
        return str(getattr(source, "name", None) or "<file>")
    return str(source)


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
    if hasattr(source, "read"):
        return "not an image"
    if Path(source).stat().st_size == 0:
        return "empty file (0 bytes)"
    return "not an image file"  # nor one of PHOTO_FORMATS: an EPS named .jpg says the same


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]


def find_usable(paths: list[Path]) -> tuple[list[bool], list[tuple[str, str]]]:
    """Decode every photo once (in threads: Pillow decodes without the GIL); which are usable, and why not. Its bar
    is shown as the caller's `progress.showing` says."""
    from concurrent.futures import ThreadPoolExecutor

    from zoolens.progress import tracked

    def check(path):
        try:
            open_image(path, min_side=64)
            return ""
        except ImageError as error:
            return error.reason

    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = list(tracked(pool.map(check, paths), len(paths), "checking photos", enabled=None))
    return [not r for r in reasons], [(str(p), r) for p, r in zip(paths, reasons) if r]
