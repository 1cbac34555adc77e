"""The camera-trap "animal" detector: MegadetectorLite, the one-class YOLOX-tiny that ships inside the `zamba` wheel,
as a zoolens engine. Built once in PyTorch from yolox-datamint's YOLOX and zamba's weights, exported to ONNX into the
cache (features.py's export, its key and probe checked at every load), then run with ONNX Runtime: detecting needs
no PyTorch. The letterboxing is zamba's (ImageOps.pad to a square, image at the top left, bicubic, 0-255 RGB); the
decoding, confidence (objectness x class) and non-maximum suppression are NumPy.

Measured on the shared camera-trap frames by benchmarks/camera_trap_detector.py.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from zoolens.data.transforms import Preprocessing
from zoolens.errors import ZoolensError
from zoolens.runtime.features import FeatureExtractor, feature_key, make_engine, onnx_path

log = logging.getLogger(__name__)

WEIGHTS_IN_ZAMBA = "zamba/object_detection/yolox/assets/yolox_tiny_640_20220528.pth"
# What `make setup` installs, all with --no-deps (yolox-datamint's declared dependencies are heavy; the network
# itself needs only these two besides PyTorch and OpenCV).
PACKAGES = {"zamba": "zamba==2.7.2", "yolox": "yolox-datamint==0.3.1", "loguru": "loguru==0.7.3",
            "thop": "thop==0.1.1.post2209072238"}
INPUT_SIZE = 640  # zamba's setting, the size the weights were trained at
STRIDES = (8, 16, 32)  # YOLOX's three output levels
# Chosen on the shared frames (benchmarks/camera_trap_detector.py): every ENA24 animal (the weakest at 0.17) and no
# box on the three empty frames (none above 0.05); zamba's 0.25 would lose two ENA24 animals.
DEFAULT_THRESHOLD = 0.1
NMS_IOU = 0.45  # zamba's


@dataclass(frozen=True)
class Detection:
    """An animal's box as a fraction of the frame, top-left origin (MegaDetector's `bbox`), and its confidence."""

    x: float
    y: float
    w: float
    h: float
    conf: float

    @property
    def bbox(self) -> list[float]:
        return [self.x, self.y, self.w, self.h]


def weights_file() -> Path | None:
    """zamba's MegadetectorLite weights, found without importing zamba; None when zamba is not installed."""
    try:
        path = Path(importlib.metadata.distribution("zamba").locate_file(WEIGHTS_IN_ZAMBA))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def missing_packages() -> list[str]:
    """The pinned packages the detector needs that are not installed (their pip names)."""
    missing = [] if weights_file() else [PACKAGES["zamba"]]
    return missing + [pin for module, pin in PACKAGES.items() if module != "zamba" and not _installed(module)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available() -> bool:
    return not missing_packages()


def unavailable_message(missing: list[str]) -> str:
    return (f"the camera-trap animal detector needs {', '.join(missing)}: "
            f"pip install --no-deps {' '.join(PACKAGES.values())}")


@functools.lru_cache(maxsize=4)
def _weights_digest(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def detector_network(weights: Path, input_size: int = INPUT_SIZE) -> FeatureExtractor:
    """The detector as features.py's engines see it: 8-bit (N, S, S, 3) letterboxed pixels in, YOLOX's raw head out,
    (N, anchors, 6): box offsets, objectness and class probability per anchor (flattened for the export's check).
    Pixels go in as 0-255 floats: a mean of 0 and a standard deviation of 1/255 undo features.py's scaling."""
    info = weights.stat()
    key = feature_key(f"megadetector-lite-yolox-tiny:{_weights_digest(weights, info.st_size, info.st_mtime_ns)}"
                      ":letterbox-top-left-bicubic:raw-head", _preprocessing(input_size))
    return FeatureExtractor(key, 6 * anchor_count(input_size), _preprocessing(input_size),
                            lambda: build_network(weights))


def _preprocessing(input_size: int) -> Preprocessing:
    return Preprocessing(input_size, input_size, (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))


def build_network(weights: Path):
    """YOLOX-tiny (one class) with zamba's weights, in PyTorch, its head giving raw outputs (decoded in NumPy)."""
    import torch
    from torch import nn
    from yolox.models import YOLOPAFPN, YOLOX, YOLOXHead

    channels = [256, 512, 1024]
    network = YOLOX(YOLOPAFPN(0.33, 0.375, in_channels=channels, act="silu"),
                    YOLOXHead(1, 0.375, in_channels=channels, act="silu"))
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 1e-3  # YOLOX's experiments set it so (yolox_base.get_model); the weights were trained with it
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ZoolensError(f"{weights}: not a YOLOX checkpoint (no 'model' state)")
    network.load_state_dict(checkpoint["model"])
    network.head.decode_in_inference = False
    return network.eval()


def anchor_count(input_size: int) -> int:
    return sum((input_size // stride) ** 2 for stride in STRIDES)


@functools.lru_cache(maxsize=4)
def anchor_grid(input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each anchor's cell (x, y) and stride, in the order of the head's output (level by level, row by row)."""
    cells, strides = [], []
    for stride in STRIDES:
        side = input_size // stride
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float]:
    """zamba's input: the frame scaled to fit a size x size square, at its top left, black around; and the scale."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    padded = ImageOps.pad(image, (size, size), method=Image.Resampling.BICUBIC, color=None, centering=(0, 0))
    return np.asarray(padded, dtype=np.uint8), min(size / image.width, size / image.height)


def decode(raw: np.ndarray, input_size: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One frame's raw head output (anchors, 6) as boxes (x1, y1, x2, y2 in input pixels) with their confidence
    (objectness x class probability) of at least `threshold`, as YOLOX's decode_outputs and postprocess do."""
    conf = raw[:, 4] * raw[:, 5]
    keep = np.flatnonzero(conf >= threshold)
    cells, strides = anchor_grid(input_size)
    centre = (raw[keep, :2] + cells[keep]) * strides[keep]
    with np.errstate(over="ignore"):
        half = np.exp(raw[keep, 2:4]) * strides[keep] / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    finite = np.isfinite(boxes).all(1)
    return boxes[finite], conf[keep][finite]


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept, best first: each box drops the lower-scored ones overlapping it by more than `iou`
    (torchvision.ops.nms's rule)."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), 1)
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = np.prod(np.clip(bottom_right - top_left, 0, None), 1)
        order = rest[overlap / np.maximum(areas[best] + areas[rest] - overlap, 1e-9) <= iou]
    return np.asarray(kept, dtype=np.int64)


class AnimalDetector:
    """`detect(images)`: the animals in each frame, as boxes with a confidence of at least `threshold`.

    The first detector on a machine exports the network (seconds, PyTorch); later ones load the checked export."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, input_size: int = INPUT_SIZE):
        missing = missing_packages()
        weights = weights_file()
        self.network = detector_network(weights, input_size) if weights else None
        # yolox (and PyTorch) only export: a checked export in the cache runs without them.
        if missing and not (weights and onnx_path(self.network.key).exists()):
            raise ZoolensError(unavailable_message(missing))
        self.threshold = threshold
        self.input_size = input_size
        try:
            self.engine = make_engine(self.network, "onnx")
        except ImportError as error:
            raise ZoolensError(f"{unavailable_message(missing or [error.name or str(error)])}") from None

    def raw(self, pixels: np.ndarray) -> np.ndarray:
        """The head's raw output (N, anchors, 6) for letterboxed 8-bit pixels (N, S, S, 3)."""
        return self.engine(pixels).reshape(len(pixels), -1, 6)

    def detect(self, images: list[Image.Image], threshold: float | None = None) -> list[list[Detection]]:
        """For each frame (an RGB PIL image) its animals, best first."""
        if not images:
            return []
        size = self.input_size
        boxed = [letterbox(image, size) for image in images]
        outputs = self.raw(np.stack([pixels for pixels, _ in boxed]))
        threshold = self.threshold if threshold is None else threshold
        return [self._frame_detections(output, image.size, scale, threshold)
                for output, image, (_, scale) in zip(outputs, images, boxed)]

    def _frame_detections(self, output, frame_size, scale, threshold) -> list[Detection]:
        boxes, scores = decode(output, self.input_size, threshold)
        kept = non_maximum_suppression(boxes, scores, NMS_IOU)
        width, height = frame_size
        frame = np.array([width, height, width, height], np.float32)
        found = []
        for i in kept:
            x1, y1, x2, y2 = np.clip(boxes[i] / scale / frame, 0, 1)
            found.append(Detection(float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(scores[i])))
        return found
