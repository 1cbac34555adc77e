"""Which backbones there are and what each needs (its source, preprocessing, whether its ImageNet weights are here,
its ImageNet class names), without building one: `zoolens models`, the study presets and the model files read this,
and none of it imports PyTorch for a declared backbone. `models/backbones.py` builds them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoolens.choices import DEFAULT_BACKBONE
from zoolens.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from zoolens.errors import ZoolensError
from zoolens.models import catalogue  # noqa: F401  (declares the named backbones into the registry)
from zoolens.models.catalogue import torchvision_imagenet_1k
from zoolens.models.registry import REGISTRY, BackboneSpec

# The declared backbones (models/catalogue.py, models/scratch.py); any other name is looked up in torchvision and timm.
OFFLINE_WEIGHTS = {name: spec.weights for name, spec in REGISTRY.items() if spec.weights is not None}


def registered_backbones() -> dict[str, BackboneSpec]:
    """Every declared backbone, the pretrained ones first: what `zoolens models` lists and the tests build."""
    return {spec.name: spec for spec in sorted(REGISTRY.values(), key=lambda spec: not spec.pretrained)}


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    source: str  # "torchvision" or "timm"
    preprocessing: Preprocessing
    weights_tag: str

    @property
    def weights_id(self) -> str:
        return f"{self.source}:{self.name}:{self.weights_tag}"


def _torchvision_names() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _timm_is_model(name: str) -> bool:
    import timm

    return timm.is_model(name)


def backbone_source(name: str) -> str:
    if name in REGISTRY:
        return REGISTRY[name].source
    if name in _torchvision_names():
        return "torchvision"
    if _timm_is_model(name):
        return "timm"
    raise ZoolensError(f"unknown backbone {name!r}: use a torchvision or timm model name (see `zoolens models`)")


def torchvision_weights(name: str):
    import torchvision

    weights = torchvision.models.get_model_weights(name)
    return weights.DEFAULT


def describe_backbone(name: str) -> BackboneInfo:
    """Name, source and input preprocessing, without building or loading anything heavy."""
    source = backbone_source(name)
    spec = REGISTRY.get(name)
    if spec is not None and (spec.weights is not None or source == "zoolens"):  # by its name now, if an alias
        return BackboneInfo(spec.name, source, spec.preprocessing, spec.weights.tag if spec.weights else "none")
    if source == "torchvision":
        weights = torchvision_weights(name)
        transform = weights.transforms()
        prep = Preprocessing(
            int(transform.crop_size[0]), int(transform.resize_size[0]), tuple(transform.mean), tuple(transform.std)
        )
        return BackboneInfo(name, source, prep, weights.name)
    import timm

    cfg = timm.get_pretrained_cfg(name)
    size = int(cfg.input_size[-1]) if cfg else 224
    crop_pct = cfg.crop_pct if cfg and cfg.crop_pct else 0.875
    mean = tuple(cfg.mean) if cfg else IMAGENET_MEAN
    std = tuple(cfg.std) if cfg else IMAGENET_STD
    return BackboneInfo(name, source, Preprocessing(size, round(size / crop_pct), mean, std), cfg.tag if cfg else "default")


def offline_weights_available(name: str) -> bool:
    offline = OFFLINE_WEIGHTS.get(name)
    if offline is not None and offline.path() is not None:
        return True
    source = backbone_source(name)
    if source == "zoolens":
        return False
    if source == "torchvision":
        from torch.hub import get_dir

        url = torchvision_weights(name).url
        return (Path(get_dir()) / "checkpoints" / os.path.basename(url)).exists()
    return False


def has_pretrained_weights(name: str) -> bool:
    return backbone_source(name) != "zoolens"


def imagenet_categories(name: str = DEFAULT_BACKBONE) -> list[str]:
    """The class names of a backbone's ImageNet head, in output order: as its declaration says, else (any other
    torchvision/timm ImageNet-1k network) torchvision's ImageNet-1k names."""
    spec = REGISTRY.get(name)
    if spec is not None and spec.categories is not None:
        return list(spec.categories())
    return torchvision_imagenet_1k()


