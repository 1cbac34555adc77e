"""The bad-input corpus, generated (never committed): every kind of file people's folders really hold."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# Inputs that must be read correctly, and inputs that must be named and skipped.
READABLE = ("png_named_jpg", "16bit", "palette", "cmyk", "alpha", "greyscale", "exif_rotated", "animated_gif",
            "one_pixel", "odd_name")
REFUSED = ("zero_bytes", "truncated", "text", "bomb", "symlink_loop", "dangling_link", "fifo", "unreadable")
NON_UTF8_NAME = os.fsdecode(b"caf\xe9 with spaces.jpg")  # Latin-1 bytes that are not UTF-8, and spaces


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = 100_000) -> bytes:
    """A few dozen bytes whose header claims side x side pixels (10 gigapixels): Pillow's bomb check must stop it."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _photo(color=(180, 120, 60), size=(64, 48)) -> Image.Image:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    pixels[..., 1] = color[1]
    pixels[..., 2] = np.linspace(255, 0, size[1], dtype=np.uint8)[:, None]
    return Image.fromarray(pixels)


def _exif_rotated_jpeg() -> bytes:
    image = _photo(size=(80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display; upright it is 40 x 80
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def make_corpus(folder: Path, real_jpeg: bytes) -> dict[str, Path]:
    """Write one file of each kind into `folder`; returns kind -> path. `real_jpeg` is a real photo's bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = _photo()
    files = {
        "zero_bytes": (folder / "zero.jpg", b""),
        "truncated": (folder / "truncated.jpg", real_jpeg[: len(real_jpeg) // 2]),
        "text": (folder / "text.jpg", b"this is not an image, just text renamed .jpg\n" * 20),
        "png_named_jpg": (folder / "png_inside.jpg", _encoded(photo, "PNG")),
        "16bit": (folder / "deep16.png", _encoded(Image.fromarray(np.full((48, 64), 40000, np.uint16)), "PNG")),
        "palette": (folder / "palette.png", _encoded(photo.convert("P"), "PNG")),
        "cmyk": (folder / "cmyk.jpg", _encoded(photo.convert("CMYK"), "JPEG")),
        "alpha": (folder / "alpha.png", _encoded(photo.convert("RGBA"), "PNG")),
        "greyscale": (folder / "grey.jpg", _encoded(photo.convert("L"), "JPEG")),
        "exif_rotated": (folder / "exif_rotated.jpg", _exif_rotated_jpeg()),
        "animated_gif": (folder / "animated.gif",
                         _encoded(photo.convert("P"), "GIF", save_all=True,
                                  append_images=[_photo((10, 200, 10)).convert("P")], duration=100, loop=0)),
        "bomb": (folder / "bomb.png", bomb_png()),
        "one_pixel": (folder / "one_pixel.png", _encoded(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")),
        "odd_name": (folder / NON_UTF8_NAME, real_jpeg),
    }
    paths = {}
    for kind, (path, data) in files.items():
        path.write_bytes(data)
        paths[kind] = path
    loop = folder / "loop.jpg"
    os.symlink(loop.name, loop)  # a link to itself: stat() fails with "too many levels of symbolic links"
    paths["symlink_loop"] = loop
    dangling = folder / "dangling.jpg"
    os.symlink("no-such-photo.jpg", dangling)
    paths["dangling_link"] = dangling
    fifo = folder / "fifo.jpg"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    paths["fifo"] = fifo
    unreadable = folder / "unreadable.jpg"
    unreadable.write_bytes(real_jpeg)
    unreadable.chmod(0)  # root reads it anyway; the tests say so rather than pretend
    paths["unreadable"] = unreadable
    return paths
