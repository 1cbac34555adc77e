"""Every backbone zoolens names (`zoolens models`, the seeds' scratch CNNs) and a spread of the torchvision and timm
families `--backbone` accepts: each is built, runs a batch to pooled features of its stated width, has a Grad-CAM
layer with a real feature map, and blocks for `--unfreeze`. Built without pretrained weights (the architecture is
what is checked), except the ones whose offline weights are installed, loaded as a user gets them."""

from __future__ import annotations

import pytest
import torch

from zoolens.evaluation.explain import gradcam_layer
from zoolens.models.backbones import (
    OFFLINE_WEIGHTS,
    build_backbone,
    describe_backbone,
    offline_weights_available,
    trainable_blocks,
)
from zoolens.models.scratch import SCRATCH_MODELS

OTHER_FAMILIES = ["resnet18", "vgg11", "densenet121", "convnext_tiny", "efficientnet_b0", "regnet_y_400mf",
                  "shufflenet_v2_x1_0", "mnasnet0_5", "mobilenetv3_large_100"]  # the last is timm's
NAMED = [*OFFLINE_WEIGHTS, *SCRATCH_MODELS]


def feature_map_of(layer: torch.nn.Module, backbone, size: int) -> tuple[int, ...]:
    seen = []
    hook = layer.register_forward_hook(lambda module, inputs, output: seen.append(tuple(output.shape)))
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, size, size))
    finally:
        hook.remove()
    return seen[-1]


@pytest.mark.parametrize("name", NAMED + OTHER_FAMILIES)
def test_a_backbone_builds_runs_and_has_a_gradcam_layer_and_blocks(name):
    pretrained = offline_weights_available(name)  # lite1 and lite2 are listed, their packages not installed here
    backbone = build_backbone(name, pretrained=pretrained).eval()
    info = describe_backbone(name)
    size = info.preprocessing.input_size
    assert backbone.info.preprocessing == info.preprocessing
    assert backbone.info.weights_tag == (info.weights_tag if pretrained else "none")
    with torch.no_grad():
        features = backbone(torch.rand(2, 3, size, size))
    assert features.shape == (2, backbone.feature_dim) and torch.isfinite(features).all()

    shape = feature_map_of(gradcam_layer(backbone, size), backbone, size)
    assert len(shape) == 4 and min(shape[2:]) > 1, shape  # a spatial map Grad-CAM can weigh

    blocks = trainable_blocks(backbone.trunk)
    assert len(blocks) >= 3 and all(any(True for _ in block.parameters()) for block in blocks)
    assert sum(p.numel() for b in blocks for p in b.parameters()) == sum(p.numel() for p in backbone.parameters())
