"""MediaPipe's models as zoolens runs them: the .tflite files inside the `mediapipe` 0.10.14 wheel (newer wheels ship
none), found without importing mediapipe (its own dependencies would replace OpenCV and protobuf: `make setup`
installs it with --no-deps), run by LiteRT (`ai-edge-litert`, Google's runtime of these very files: nothing
converted). Used by the person check of photos turned away (models/faces.py: BlazeFace short range) and by the
camera-trap frame judge's body check (runtime/person_detector.py: BlazePose and BlazeFace full range).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError

PACKAGES = {"mediapipe": "mediapipe==0.10.14", "ai_edge_litert": "ai-edge-litert==2.3.0"}
INSTALL = f"pip install --no-deps {PACKAGES['mediapipe']} && pip install {PACKAGES['ai_edge_litert']}"


def model_file(name: str) -> Path | None:
    """A file of the installed mediapipe wheel (e.g. "mediapipe/modules/pose_detection/pose_detection.tflite"), or None
    when mediapipe is not installed or its wheel does not ship it."""
    try:
        path = Path(importlib.metadata.distribution("mediapipe").locate_file(name))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def missing_packages(names: tuple[str, ...]) -> list[str]:
    """What to install before these model files can run: [] when nothing."""
    missing = [] if all(model_file(name) for name in names) else [PACKAGES["mediapipe"]]
    return missing + ([] if importlib.util.find_spec("ai_edge_litert") else [PACKAGES["ai_edge_litert"]])


def interpreter(path: Path):
    """A LiteRT interpreter of one model file, its tensors allocated, on one thread (not to be shared between threads);
    a file LiteRT cannot use is one ZoolensError line naming it."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        loaded = Interpreter(model_path=str(path), num_threads=1)
        with native_stderr_silenced():
            loaded.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ZoolensError(f"{path}: not a usable LiteRT model ({str(error).splitlines()[0]}); reinstall "
                           f"{PACKAGES['mediapipe']}") from None
    return loaded


@contextlib.contextmanager
def native_stderr_silenced():
    """Where LiteRT attaches its XNNPACK delegate it prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
    the process's stderr from C++ (no logging to turn down): a stray line in every command's output. File descriptor 2
    points at /dev/null meanwhile (without the delegate BlazeFace takes 7 ms instead of 2.5)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    try:
        with open(os.devnull, "wb") as nothing:
            os.dup2(nothing.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.lru_cache(maxsize=None)
def anchor_centres(input_size: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(N, 2): each SSD anchor's centre as a fraction of the input, in the order of the model's outputs, for
    MediaPipe's SsdAnchorsCalculator `layers` ((stride, anchors per cell), ...) with fixed anchor sizes."""
    centres = []
    for stride, per_cell in layers:
        cells = input_size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres.append(np.repeat((np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) / cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)
