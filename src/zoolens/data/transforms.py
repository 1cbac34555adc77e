"""Photo -> network input, for evaluation and (with the seeds' augmentation) for training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torchvision.transforms import v2 as T

from zoolens.models.backbones import Preprocessing


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
    return T.Compose(
        [
            T.ToImage(),
            T.Resize(prep.resize_size, antialias=True),
            T.CenterCrop(prep.input_size),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(prep.mean, prep.std),
        ]
    )


def train_transform(prep: Preprocessing, augmentation: Augmentation | None) -> T.Compose:
    if augmentation is None:
        return eval_transform(prep)
    steps = [
        T.ToImage(),
        T.Resize(prep.resize_size, antialias=True),
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
