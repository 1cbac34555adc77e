"""The one way a photo becomes features: an extractor.

`Extractor` is what training, every answer and the open-set check ask of a backbone; `runtime.features.FeatureExtractor`
is one backbone (its cache key, width, preprocessing, and its ONNX Runtime / PyTorch / cached-kit engines behind it)
and `CombinedExtractor` several side by side, their features concatenated, each member's cached under its own key
and computed at its own input size: a combination is an extractor too. A model holds the extractor its head reads
and, where its open-set check reads another one (the pretrained backbone beside a fine-tuned or scratch one), both
combined; `parts` gives each member's columns back.

A backbone ensemble ("mobilenet_v2+efficientnet_lite2", `ensemble_extractor`) is a CombinedExtractor of frozen
pretrained members that all see one crop of the photo (the largest member's input size), so that pixels decoded once
feed every member, and that answers everything one backbone's extractor answers: its ImageNet classifier (the mean of
the members' logits), its tensors and parameters, its PyTorch module (`models.ensemble.EnsembleBackbone`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from zoolens.choices import ENSEMBLE_JOIN, ensemble_members
from zoolens.data.transforms import Preprocessing, network_pixels
from zoolens.errors import ZoolensError
from zoolens.models.available import BackboneInfo, describe_backbone, offline_weights_available
from zoolens.runtime.features import (
    FeatureExtractor,
    FeatureSet,
    extract_features_sharded,
    extractor_of_backbone,
    feature_key,
    onnx_path,
)

if TYPE_CHECKING:
    from zoolens.runtime.distributed import Processes
    from zoolens.runtime.pretrained_kit import PretrainedKit

__all__ = ["CombinedExtractor", "Extractor", "FeatureExtractor", "combined", "ensemble_extractor",
           "ensemble_preprocessing", "frozen_extractor", "pretrained_extractor"]


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
        return side_by_side([member.features_of_paths(paths, progress) for member in self.members])

    def same_crop(self) -> bool:
        """Whether every member sees the same pixels (input and resize size: the normalisation is in its graph)."""
        return len({(member.input_size, member.preprocessing.resize_size) for member in self.members}) == 1

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Photos resized and cropped by `preprocessing`, 8-bit (N, S, S, 3): every member must take that crop."""
        if not self.same_crop():
            others = [member.key for member in self.members
                      if member.input_size != self.preprocessing.input_size
                      or member.preprocessing.resize_size != self.preprocessing.resize_size]
            raise ZoolensError(f"{', '.join(others)}: another input size than {self.preprocessing.input_size} px; "
                               "give these photos as images or paths")
        return np.concatenate([member.features_of_pixels(pixels) for member in self.members], axis=1)

    def features_of_images(self, images: list) -> np.ndarray:
        if self.same_crop():  # decoded once for them all
            return self.features_of_pixels(np.stack([network_pixels(image, self.preprocessing) for image in images]))
        return np.concatenate([member.features_of_images(images) for member in self.members], axis=1)

    # ---- what one backbone's extractor also answers (a frozen model's steps and its saved file) ----------------
    @property
    def info(self) -> BackboneInfo:
        """The members as one backbone: their names, sources and weights joined by "+"."""
        infos = [member.info for member in self.members]
        return BackboneInfo(ENSEMBLE_JOIN.join(info.name for info in infos),
                            ENSEMBLE_JOIN.join(info.source for info in infos), self.preprocessing,
                            ENSEMBLE_JOIN.join(info.weights_tag for info in infos))

    def backbone(self):
        """The PyTorch module of them all (`models.ensemble.EnsembleBackbone`), each member built if it was not."""
        from zoolens.models.ensemble import EnsembleBackbone

        return EnsembleBackbone([member.backbone() for member in self.members],
                                [member.preprocessing for member in self.members], self.info)

    def imagenet_head(self):
        """The ensemble's ImageNet classifier over its features: the mean of the members' ImageNet logits (one linear
        layer over the features side by side); (None, why not) when a member has none."""
        from zoolens.models.open_set import ImageNetHead

        heads = []
        for member in self.members:
            head, why_not = member.imagenet_head()
            if head is None:
                return None, f"{member.info.name}: {why_not}"
            heads.append(head)
        if any(head.categories != heads[0].categories for head in heads):
            return None, "the members' ImageNet classifiers name their categories otherwise"
        return ImageNetHead(np.concatenate([head.weight for head in heads], axis=1) / len(heads),
                            np.mean([head.bias for head in heads], axis=0), heads[0].categories), None

    def tensors(self) -> dict[str, np.ndarray]:
        """Every member's weights, named as an `EnsembleBackbone` in a Classifier holds them
        ("backbone.members.0.trunk...")."""
        return {f"backbone.members.{i}.{name.removeprefix('backbone.')}": array
                for i, member in enumerate(self.members) for name, array in member.tensors().items()}

    def parameters(self) -> int:
        return sum(member.parameters() for member in self.members)


def side_by_side(found: list[FeatureSet]) -> FeatureSet:
    """Several extractors' features of the same photos as one set: a photo is usable when it is for every one."""
    if len(found) == 1:
        return found[0]
    problems = list(dict.fromkeys(problem for one in found for problem in one.problems))
    by_process = [one.computed_by_process for one in found]
    return FeatureSet(np.concatenate([one.features for one in found], axis=1),
                      np.logical_and.reduce([one.usable for one in found]), problems,
                      sum(one.computed for one in found),
                      None if None in by_process else [sum(counts) for counts in zip(*by_process)])


def features_sharded(extractor: Extractor, paths: list[Path], processes: Processes) -> FeatureSet:
    """`features.extract_features_sharded` for each member (its share of the photos to each process of a
    multi-process run), their features side by side."""
    return side_by_side([extract_features_sharded(paths, member, member.preprocessing, processes)
                         for member in extractor.members])


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


def frozen_extractor(name: str, prep: Preprocessing) -> FeatureExtractor:
    """A pretrained backbone that stays frozen, at `prep`: from its cached kit when there is one (nothing built, no
    PyTorch), else built now and kept as a kit for next time."""
    from zoolens.runtime.pretrained_kit import find_kit, write_kit

    kit = find_kit(describe_backbone(name))
    if kit is not None:
        return pretrained_extractor(name, prep, kit)
    built = _pretrained_backbone(name)
    return replace(extractor_of_backbone(built, prep), kit=write_kit(built))


def ensemble_preprocessing(names: tuple[str, ...], image_size: int | None = None) -> list[Preprocessing]:
    """Each member's preprocessing in an ensemble: one crop for all of them (the largest member's input and resize
    size, or `image_size` at its ratio), each with its own normalisation."""
    preps = [describe_backbone(name).preprocessing for name in names]
    largest = max(preps, key=lambda prep: prep.input_size)
    crop = largest.at_size(image_size) if image_size else largest
    return [Preprocessing(crop.input_size, crop.resize_size, prep.mean, prep.std) for prep in preps]


def ensemble_extractor(backbone: str, image_size: int | None = None) -> CombinedExtractor:
    """The frozen pretrained members of an ensemble's name ("mobilenet_v2+efficientnet_lite2") side by side, each
    from its kit when cached, every one at the ensemble's crop (`ensemble_preprocessing`)."""
    names = ensemble_members(backbone)
    return CombinedExtractor(tuple(frozen_extractor(name, prep)
                                   for name, prep in zip(names, ensemble_preprocessing(names, image_size))))
