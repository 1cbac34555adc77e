"""The seeds' own small CNNs, trained from scratch, as trunks that end in a feature vector.

Each is written as its report gives it; where a report leaves a detail out, the comment says what
was chosen. The dense softmax layer is zoolens' usual head (dropout + linear) on top of the trunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoolens.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from zoolens.models.registry import register_backbone

if TYPE_CHECKING:
    from torch import nn

UNIT_SCALE = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # Keras' rescale=1/255


@register_backbone("small_cnn", feature_width=512, aliases=("seed001_cnn",), source="zoolens",
                   preprocessing=Preprocessing(150, 150, **UNIT_SCALE),
                   summary="four convolutions and a dense 512 at 150 px, from scratch (seed 001's CNN)")
def small_cnn() -> nn.Module:
    """Seed 001: four 3x3 convolutions (32, 64, 128, 128) each followed by 2x2 max pooling on 150-px
    input, flatten (7x7x128 = 6272), dense 512 with ReLU; its dropout 0.5 is the head's."""
    from torch import nn

    layers = []
    for cin, cout in ((3, 32), (32, 64), (64, 128), (128, 128)):
        layers += [nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    # Adaptive pooling keeps the 6272-wide flatten at other input sizes (exactly 7x7 at 150 px).
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(7), nn.Flatten(), nn.Linear(6272, 512), nn.ReLU(inplace=True))


@register_backbone("baseline_cnn", feature_width=228, aliases=("seed002_baseline",), source="zoolens",
                   preprocessing=Preprocessing(224, 224, IMAGENET_MEAN, IMAGENET_STD),
                   summary="two strided convolutions and a dense 228, from scratch (seed 002's baseline)")
def baseline_cnn() -> nn.Module:
    """Seed 002's baseline (its table 1): conv 3x3 stride 2 (32), max pool 2, conv 3x3 stride 2 (32),
    max pool 2, fully connected 6272 -> 228, with batch norm and ReLU after each layer."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(14),  # 14x14x32 = 6272 at 224 px, as in the table; any input size works
        nn.Flatten(), nn.Linear(6272, 228), nn.BatchNorm1d(228), nn.ReLU(inplace=True),
    )


@register_backbone("gap_cnn", feature_width=128, aliases=("seed004_cnn",), source="zoolens",
                   preprocessing=Preprocessing(224, 224, **UNIT_SCALE),
                   summary="six convolutions and global average pooling, from scratch (seed 004's CNN)")
def gap_cnn() -> nn.Module:
    """Seed 004's scratch CNN: convolutions of 16 (3x3), 32, 64, 128, 128, 128 filters (2x2), 'same'
    padding, ReLU. The report's listing omits its pooling layers; the Udacity model it follows pools
    after each convolution and ends in global average pooling, which is what is built here."""
    from torch import nn

    layers = []
    for cin, cout, kernel in ((3, 16, 3), (16, 32, 2), (32, 64, 2), (64, 128, 2), (128, 128, 2), (128, 128, 2)):
        layers += [nn.Conv2d(cin, cout, kernel, padding="same"), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
