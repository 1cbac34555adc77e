"""What pictures that cost more than their bytes cost now: one JSON object per input, with the time one decode
took (`open_image`, in a fresh child process), the file bytes it read (/proc/self/io, less the interpreter's own
imports measured on an empty run) and its peak memory. The inputs of docs/hardening.md, "Pictures that cost more
than their bytes": a 20 GB sparse .jpg, 600 bytes of JPEG header then 900 MB of zeros, a 19 MB upload of a
header and zeros (decoded from memory, as the web app does), a 1 x 100 000 PNG, and a real 12-megapixel JPEG
for scale.

    python benchmarks/hostile_pictures.py
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import json, sys, time
from zoolens.data.images import open_image
from zoolens.errors import ImageError

def peak_kb():  # VmHWM: ru_maxrss is carried over exec from the process that started this one
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))

def read_bytes():
    return int(dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())["rchar"])

source = sys.argv[1]
if sys.argv[2] == "bytes":
    source = open(source, "rb").read()
before = read_bytes()
started = time.perf_counter()
try:
    open_image(source, min_side=256)
    outcome = "read"
except ImageError as error:
    outcome = error.reason
print(json.dumps({"seconds": round(time.perf_counter() - started, 3), "read_mb": round((read_bytes() - before) / 1e6, 1),
                  "peak_mb": round(peak_kb() / 1024), "outcome": outcome}))
"""


def jpeg_header(cut: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (120, 30, 50)).save(buffer, "JPEG")
    return buffer.getvalue()[:cut]


def inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    sparse = folder / "sparse-20GB.jpg"
    with open(sparse, "wb") as handle:
        handle.write(jpeg_header())
        handle.truncate(20 * 1024**3)
    padded = folder / "header-and-900MB-of-zeros.jpg"
    with open(padded, "wb") as handle:
        handle.write(jpeg_header())
        handle.truncate(900 * 1024**2)
    upload = folder / "upload-19MB.jpg"
    upload.write_bytes(jpeg_header() + bytes(19 * 1024**2))
    thin = folder / "thin-1x100000.png"
    Image.new("L", (1, 100_000), 128).save(thin)
    camera = folder / "camera-12MP.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(camera, quality=90)
    return {"20 GB sparse .jpg": (sparse, "path"), "JPEG header + 900 MB of zeros": (padded, "path"),
            "19 MB upload: JPEG header + zeros": (upload, "bytes"), "1 x 100 000 PNG (348 KB)": (thin, "path"),
            "12-megapixel camera JPEG (for scale)": (camera, "path")}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for name, (path, kind) in inputs(Path(scratch)).items():
            result = subprocess.run([sys.executable, "-c", CHILD, str(path), kind], capture_output=True, text=True,
                                    timeout=600, check=True)
            print(json.dumps({"input": name, "file_mb": round(path.stat().st_size / 1e6, 1),
                              **json.loads(result.stdout)}))


if __name__ == "__main__":
    main()
