"""The one way a photo becomes features: an extractor.

`Extractor` is what training, every answer and the open-set check ask of a backbone; `runtime.features.FeatureExtractor`
is one backbone (its cache key, width, preprocessing, and its ONNX Runtime / PyTorch / cached-kit engines behind it)
and `CombinedExtractor` several side by side, their features concatenated, each member's cached under its own key
and computed at its own input size: a combination is an extractor too. A model holds the extractor its head reads
and, where its open-set check reads another one (the pretrained backbone beside a fine-tuned or scratch one), both
combined; `parts` gives each member's columns back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from zoolens.data.transforms import Preprocessing
from zoolens.errors import ZoolensError
from zoolens.models.available import describe_backbone, offline_weights_available
from zoolens.runtime.features import FeatureExtractor, FeatureSet, feature_key, onnx_path

if TYPE_CHECKING:
    from zoolens.runtime.pretrained_kit import PretrainedKit

__all__ = ["CombinedExtractor", "Extractor", "FeatureExtractor", "combined", "pretrained_extractor"]


@runtime_checkable
class Extractor(Protocol):
    """What makes features of photos: one backbone (`FeatureExtractor`) or several (`CombinedExtractor`)."""

    @property
    def key(self) -> str: ...

    @property
    def feature_dim(self) -> int: ...

    @property
    def preprocessing(self) -> Preprocessing: ...

    @property
    def members(self) -> tuple[FeatureExtractor, ...]: ...

    def parts(self, features: np.ndarray) -> list[np.ndarray]: ...

    def features_of_paths(self, paths: list[Path], progress: bool = False) -> FeatureSet: ...

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray: ...

    def features_of_images(self, images: list) -> np.ndarray: ...


@dataclass(frozen=True)
class CombinedExtractor:
    """Several backbones side by side: their features, concatenated in member order."""

    members: tuple[FeatureExtractor, ...]

    @property
    def key(self) -> str:
        """Names the combination (each member's features are cached under the member's own key)."""
        return "+".join(member.key for member in self.members)

    @property
    def feature_dim(self) -> int:
        return sum(member.feature_dim for member in self.members)

    @property
    def preprocessing(self) -> Preprocessing:
        """How photos are decoded for `features_of_pixels`: the first member's."""
        return self.members[0].preprocessing

    def parts(self, features: np.ndarray) -> list[np.ndarray]:
        """Each member's columns of `features`."""
        ends = np.cumsum([member.feature_dim for member in self.members])
        if features.shape[1] != ends[-1]:
            raise ZoolensError(f"features {features.shape[1]} wide are not those of {self.key} ({ends[-1]} wide)")
        return np.split(features, ends[:-1], axis=1)

    def features_of_paths(self, paths: list[Path], progress: bool = False) -> FeatureSet:
        """Every member's features of the files (each from its own cache); a photo is usable when it is for all."""
        found = [member.features_of_paths(paths, progress) for member in self.members]
        problems = list(dict.fromkeys(problem for one in found for problem in one.problems))
        return FeatureSet(np.concatenate([one.features for one in found], axis=1),
                          np.logical_and.reduce([one.usable for one in found]), problems,
                          sum(one.computed for one in found))

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Photos resized and cropped by `preprocessing`, 8-bit (N, S, S, 3): every member must take that size."""
        others = [member.key for member in self.members if member.preprocessing != self.preprocessing]
        if others:
            raise ZoolensError(f"{', '.join(others)}: another input size than {self.preprocessing.input_size} px; "
                               "give these photos as images or paths")
        return np.concatenate([member.features_of_pixels(pixels) for member in self.members], axis=1)

    def features_of_images(self, images: list) -> np.ndarray:
        return np.concatenate([member.features_of_images(images) for member in self.members], axis=1)


def combined(*extractors: Extractor) -> Extractor:
    """The extractors side by side (a combination's members in place); one alone is itself."""
    members = tuple(member for extractor in extractors for member in extractor.members)
    return members[0] if len(members) == 1 else CombinedExtractor(members)


def pretrained_extractor(name: str, prep: Preprocessing, kit: PretrainedKit | None = None,
                         feature_dim: int | None = None) -> FeatureExtractor:
    """A pretrained backbone's features at `prep`, without building it: keyed by its weights, so that features and
    the ONNX file cached for it before are found; its kit, when given, stands in for its weights and ImageNet
    classifier. The PyTorch network is built (once) only when needed: to export it, or when neither the kit nor
    `feature_dim` says how wide its features are. ZoolensError when its weights are neither installed nor
    downloadable and it is not exported yet."""
    info = describe_backbone(name)
    build = functools.cache(lambda: _pretrained_backbone(name))
    key = feature_key(info.weights_id, prep)
    if kit is None and not onnx_path(key).exists() and not offline_weights_available(name):
        build()  # downloads its weights, or says why it cannot
    dim = kit.feature_dim if kit is not None else feature_dim if feature_dim is not None else build().feature_dim
    return FeatureExtractor(key, dim, prep, build, info, kit)


def _pretrained_backbone(name: str):
    from zoolens.models.backbones import build_backbone

    return build_backbone(name, pretrained=True)
