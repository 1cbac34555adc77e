"""A pretrained backbone kept in the cache as plain arrays: its weights (the tensors of its PyTorch module, by name),
its ImageNet classifier over the pooled features, and the facts a model file records about it (feature width,
parameter count). Written the first time training builds the backbone; from then on a model on its frozen features
is trained, checked for "none of these", evaluated and saved with NumPy and safetensors, without importing PyTorch
(1.5-4.6 s) or building the network (another 1-2 s). One safetensors file per pretrained weights, never a pickle;
a file that does not read back whole, or describes other weights, is not used (the backbone is built again)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors import SafetensorError

from zoolens.files import replaced_atomically
from zoolens.models.available import BackboneInfo, imagenet_categories
from zoolens.runtime.features import cache_dir

if TYPE_CHECKING:
    from zoolens.models.backbones import Backbone
    from zoolens.models.open_set import ImageNetHead

log = logging.getLogger(__name__)
KIT_FORMAT = "zoolens-pretrained-kit-1"
IMAGENET_WEIGHT, IMAGENET_BIAS = "imagenet.weight", "imagenet.bias"
TRUNK_PREFIX = "backbone."  # the backbone's tensors, named as a Classifier's state names them


def kit_path(info: BackboneInfo) -> Path:
    return cache_dir() / "kits" / f"{hashlib.sha256(info.weights_id.encode()).hexdigest()[:20]}.safetensors"


@dataclass(frozen=True)
class PretrainedKit:
    info: BackboneInfo
    feature_dim: int
    parameters: int  # the backbone's trainable weights, counted as PyTorch counts a module's parameters
    path: Path
    no_imagenet_because: str  # "" when the kit holds the ImageNet classifier

    def tensors(self) -> dict[str, np.ndarray]:
        """The backbone's tensors, named as in a Classifier's state ("backbone.trunk...")."""
        return self._read(lambda name: name.startswith(TRUNK_PREFIX))

    def imagenet_head(self) -> tuple[ImageNetHead | None, str | None]:
        """As `backbones.imagenet_head` answers for the built backbone: the head, or (None, why not)."""
        from zoolens.models.open_set import ImageNetHead

        if self.no_imagenet_because:
            return None, self.no_imagenet_because
        arrays = self._read(lambda name: name in (IMAGENET_WEIGHT, IMAGENET_BIAS))
        return ImageNetHead(arrays[IMAGENET_WEIGHT], arrays[IMAGENET_BIAS], imagenet_categories(self.info.name)), None

    def _read(self, wanted) -> dict[str, np.ndarray]:
        """The kit's arrays whose names `wanted` accepts, and only those read from the file."""
        from safetensors import safe_open

        with safe_open(str(self.path), framework="numpy") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys() if wanted(name)}


def find_kit(info: BackboneInfo) -> PretrainedKit | None:
    """The cached kit of these pretrained weights, or None (never written, or not whole)."""
    from safetensors import safe_open

    path = kit_path(info)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as handle:
            facts = handle.metadata() or {}
            names = set(handle.keys())
        if facts.get("format") != KIT_FORMAT or facts.get("weights_id") != info.weights_id:
            return None
        no_imagenet = facts.get("no_imagenet_because", "")
        if not no_imagenet and not {IMAGENET_WEIGHT, IMAGENET_BIAS} <= names:
            return None
        return PretrainedKit(info, int(facts["feature_dim"]), int(facts["parameters"]), path, no_imagenet)
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        log.warning("%s: unreadable (%s); the backbone is built again", path, error)
        return None


def write_kit(backbone: Backbone) -> PretrainedKit | None:
    """Keep a pretrained backbone built by PyTorch as a kit; None when the cache cannot be written (a warning)."""
    from safetensors.numpy import save_file

    from zoolens.models.backbones import imagenet_head

    info = backbone.info
    tensors = {f"{TRUNK_PREFIX}{name}": tensor.detach().cpu().contiguous().numpy()
               for name, tensor in backbone.state_dict().items()}
    head, why_not = imagenet_head(backbone)
    if head is not None:
        tensors[IMAGENET_WEIGHT], tensors[IMAGENET_BIAS] = head.weight, head.bias
    parameters = sum(p.numel() for p in backbone.parameters())
    facts = {"format": KIT_FORMAT, "weights_id": info.weights_id, "feature_dim": str(backbone.feature_dim),
             "parameters": str(parameters), "no_imagenet_because": why_not or ""}
    path = kit_path(info)
    try:
        with replaced_atomically(path) as staging:
            save_file(tensors, str(staging), metadata=facts)
    except (OSError, SafetensorError) as error:
        log.warning("%s: not written (%s); the backbone is built again next time", path, error)
        return None
    return PretrainedKit(info, backbone.feature_dim, parameters, path, why_not or "")
