"""Photo -> network input, for evaluation and (with the seeds' augmentation) for training.

Every surface (the CLI, `Model.predict`, batch jobs, Ray, the web and desktop apps, Grad-CAM, fine-tuning) takes a
photo's pixels through `decode_for_network` and `network_pixels`: one photo, one set of pixels, one answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from zoolens.data.images import open_image

if TYPE_CHECKING:  # imported where used, so that what only describes a preprocessing does not load PyTorch
    from torchvision.transforms import v2 as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the network's input: shorter side to `resize_size`, centre crop, normalise."""

    input_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            input_size=int(data["input_size"]),
            resize_size=int(data["resize_size"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
        )

    def at_size(self, input_size: int) -> Preprocessing:
        scale = self.resize_size / self.input_size
        return Preprocessing(input_size, round(input_size * scale), self.mean, self.std)


@dataclass(frozen=True)
class Augmentation:
    """Keras ImageDataGenerator-style augmentation, as the seeds use it (rotation, shift, shear, zoom, flip)."""

    rotation: float = 20.0  # degrees
    shift: float = 0.1  # fraction of width/height
    shear: float = 10.0  # degrees
    zoom: float = 0.15  # scale in [1 - zoom, 1 + zoom]
    horizontal_flip: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def eval_transform(prep: Preprocessing) -> T.Compose:
    """Resize and crop on the PIL image (Pillow's resampling), then scale and normalise."""
    import torch
    from torchvision.transforms import v2 as T

    return T.Compose(
        [
            T.Resize(prep.resize_size, antialias=True),
            T.CenterCrop(prep.input_size),
            T.ToImage(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(prep.mean, prep.std),
        ]
    )


def decode_for_network(photo, prep: Preprocessing) -> Image.Image:
    """The one decode of a photo for a network: upright RGB, as `open_image` makes it.

    A path, bytes or an open file (all files, one in memory) decode a JPEG at reduced scale (Pillow's `draft`: by 1/2,
    1/4 or 1/8 while its shorter side stays at least `prep.resize_size`), which is what keeps large camera-trap
    frames fast; `cropped_pixels` then resizes that. A PIL image is already decoded: it is taken at the size it has
    (turned upright by its EXIF orientation, made RGB), so a large JPEG handed in as a PIL image, decoded whole, can
    get slightly other probabilities than the same file given by its path or its bytes (0.1 % on a 2400 px photo).
    Raises ImageError naming the photo and the problem."""
    return open_image(photo, min_side=prep.resize_size)


def network_pixels(photo, prep: Preprocessing) -> np.ndarray:
    """The one preprocessing: a photo (path, bytes, open file or PIL image) decoded by `decode_for_network`, then
    resized and centre-cropped by `cropped_pixels`, 8-bit (S, S, 3). Raises ImageError."""
    return cropped_pixels(decode_for_network(photo, prep), prep)


def network_transform(prep: Preprocessing) -> T.Compose:
    """A photo from `decode_for_network` as a network input tensor (3, S, S) through `cropped_pixels`, the pixels every
    answer sees, then scaled and normalised in PyTorch (for Grad-CAM and the photos a network trains on)."""
    import functools

    import torch
    from torchvision.transforms import v2 as T

    return T.Compose([functools.partial(_writable_pixels, prep=prep), T.ToImage(),
                      T.ToDtype(torch.float32, scale=True), T.Normalize(prep.mean, prep.std)])


def _writable_pixels(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    return np.array(cropped_pixels(image, prep))  # a copy PyTorch may write to (Pillow's array is read-only)


def preprocess_array(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """`eval_transform` for one photo in NumPy, (3, H, W) float32: the same numbers without torch's
    per-op overhead, which dominates single-photo latency on a small CPU."""
    return normalised(cropped_pixels(image, prep), prep)


def cropped_pixels(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """The resized, centre-cropped photo as 8-bit (S, S, 3): a quarter of the network input's bytes.

    torchvision's Resize(resize_size) and CenterCrop(input_size) on a PIL image, pixel for pixel (tests compare the
    two), written out because importing torchvision costs a prediction 1 to 3 s of the second it should take:
    the shorter side scaled to resize_size (the longer one truncated), Pillow's bilinear filter, the crop's corner
    rounded, black where the photo is smaller than the crop."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    resized = prep.resize_size, int(prep.resize_size * long / short)
    size = resized if width <= height else resized[::-1]
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    left, top = (_crop_start(side, prep.input_size) for side in size)
    return np.asarray(image.crop((left, top, left + prep.input_size, top + prep.input_size)))


def _crop_start(side: int, crop: int) -> int:
    return int(round((side - crop) / 2.0)) if crop <= side else -((crop - side) // 2)


def normalised(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """8-bit (..., S, S, 3) pixels as network input (..., 3, S, S) float32, scaled and normalised."""
    scaled = pixels.astype(np.float32) * np.float32(1 / 255)
    mean, std = np.asarray(prep.mean, np.float32), np.asarray(prep.std, np.float32)
    return np.ascontiguousarray(np.moveaxis((scaled - mean) / std, -1, -3))


def train_transform(prep: Preprocessing, augmentation: Augmentation | None) -> T.Compose:
    if augmentation is None:
        return network_transform(prep)
    import torch
    from torchvision.transforms import v2 as T

    steps = [
        T.Resize(prep.resize_size, antialias=True),
        T.ToImage(),
        T.RandomAffine(
            degrees=augmentation.rotation,
            translate=(augmentation.shift, augmentation.shift),
            scale=(1 - augmentation.zoom, 1 + augmentation.zoom),
            shear=augmentation.shear,
        ),
        T.CenterCrop(prep.input_size),
    ]
    if augmentation.horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(prep.mean, prep.std)]
    return T.Compose(steps)
