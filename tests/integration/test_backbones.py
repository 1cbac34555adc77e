"""Every backbone of the registry (`zoolens models`: the offline ones and the seeds' scratch CNNs) and a spread of the torchvision and timm
families `--backbone` accepts: each is built, runs a batch to pooled features of its stated width, has a Grad-CAM
layer with a real feature map, and blocks for `--unfreeze`. Built without pretrained weights (the architecture is
what is checked), except the ones whose offline weights are installed, loaded as a user gets them."""

from __future__ import annotations

import pytest
import torch

from zoolens.evaluation.explain import gradcam_layer
from zoolens.models.available import describe_backbone, offline_weights_available, registered_backbones
from zoolens.models.backbones import build_backbone, unfreeze_blocks

OTHER_FAMILIES = ["resnet18", "vgg11", "densenet121", "convnext_tiny", "efficientnet_b0", "regnet_y_400mf",
                  "shufflenet_v2_x1_0", "mnasnet0_5", "mobilenetv3_large_100"]  # the last is timm's
NAMED = list(registered_backbones())  # every declaration of models/catalogue.py and models/scratch.py
# Big networks take 4 to 17 s each to build and run on a busy CPU: the fast tier checks the small ones of each kind
# (the default, a timm one, the scratch CNNs, a torchvision spread), the full suite every one.
SLOW_TO_BUILD = {"efficientnet_lite2", "vgg11", "densenet121", "convnext_tiny", "regnet_y_400mf",
                 "mobilenetv3_large_100", "wide_resnet50_2", "inception_v3", "googlenet", "shufflenet_v2_x1_0",
                 "efficientnet_b0"}


def slow_if_big(names) -> list:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_BUILD else name for name in names]


def feature_map_of(layer: torch.nn.Module, backbone, size: int) -> tuple[int, ...]:
    seen = []
    hook = layer.register_forward_hook(lambda module, inputs, output: seen.append(tuple(output.shape)))
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, size, size))
    finally:
        hook.remove()
    return seen[-1]


@pytest.mark.parametrize("name", slow_if_big(NAMED + OTHER_FAMILIES))
def test_a_backbone_builds_runs_and_has_a_gradcam_layer_and_blocks(name):
    pretrained = offline_weights_available(name)  # the declared backbones whose weights make setup installs
    backbone = build_backbone(name, pretrained=pretrained).eval()
    info = describe_backbone(name)
    size = info.preprocessing.input_size
    assert backbone.info.preprocessing == info.preprocessing
    assert backbone.info.weights_tag == (info.weights_tag if pretrained else "none")
    with torch.no_grad():
        features = backbone(torch.rand(2, 3, size, size))
    assert features.shape == (2, backbone.feature_dim) and torch.isfinite(features).all()
    declared = registered_backbones().get(name)
    if declared is not None:  # what list_backbones() says before anything is built
        assert declared.feature_width == backbone.feature_dim

    shape = feature_map_of(gradcam_layer(backbone, size), backbone, size)
    assert len(shape) == 4 and min(shape[2:]) > 1, shape  # a spatial map Grad-CAM can weigh

    blocks = unfreeze_blocks(backbone)
    assert len(blocks) >= 3 and all(any(True for _ in block.parameters()) for block in blocks)
    assert sum(p.numel() for b in blocks for p in b.parameters()) == sum(p.numel() for p in backbone.parameters())


# Each declared family, by one of its names (the timm one is efficientnet_lite0's family, also mixnet's).
FAMILY_MEMBERS = {"resnet18": "layer4", "wide_resnet50_2": "layer4", "vgg11": "0", "alexnet": "0",
                  "squeezenet1_0": "0", "inception_v3": "Mixed_7c", "googlenet": "inception5b",
                  "mobilenet_v2": "features.18", "mobilenet_v3_small": "features.12", "efficientnet_b0": "features.8",
                  "convnext_tiny": "features.7", "densenet121": "features", "regnet_y_400mf": "trunk_output",
                  "shufflenet_v2_x1_0": "conv5", "mnasnet0_5": "layers", "efficientnet_lite0": "bn2",
                  "mixnet_s": "bn2", "resnet50": "layer4"}


@pytest.mark.parametrize("name", slow_if_big(FAMILY_MEMBERS))
def test_a_declared_family_names_its_gradcam_layer_without_the_search(name, monkeypatch):
    from zoolens.evaluation import explain

    def no_search(*args):
        raise AssertionError("searched for a feature map the family declares")

    monkeypatch.setattr(explain, "_last_spatial_module", no_search)
    source = "timm" if name in ("efficientnet_lite0", "mixnet_s", "resnet50") else "torchvision"
    if source == "timm" and name != "efficientnet_lite0":
        import timm

        backbone = timm.create_model(name, pretrained=False, num_classes=0)  # timm's resnet50, not torchvision's
    else:
        backbone = build_backbone(name, pretrained=False)
    network = backbone.trunk if hasattr(backbone, "trunk") else backbone
    layer = gradcam_layer(backbone, 64)
    assert layer is network.get_submodule(FAMILY_MEMBERS[name])


def test_zoolens_models_lists_the_registry(capsys):
    from zoolens.cli import main

    assert main(["models"]) == 0
    shown = capsys.readouterr().out.splitlines()
    for name, spec in registered_backbones().items():
        row = next(i for i, line in enumerate(shown) if line.startswith(f"{name} "))
        assert spec.summary and shown[row + 1] == f"    {spec.summary}"
    assert "none: trained from scratch (--strategy scratch)" in next(line for line in shown if line.startswith("small_cnn "))


def test_a_new_backbone_is_one_declaration():
    """Declared with its own Grad-CAM layer and --unfreeze blocks: zoolens builds it, describes it and uses both."""
    from torch import nn

    from zoolens.data.transforms import Preprocessing
    from zoolens.evaluation.explain import gradcam_layer
    from zoolens.models.registry import REGISTRY, register_backbone

    @register_backbone("tiny_test_cnn", source="zoolens", preprocessing=Preprocessing(32, 32),
                       gradcam_layer=lambda trunk: trunk[0],  # not the last map, which Grad-CAM would find itself
                       blocks=lambda trunk: [trunk[0], trunk[2]], summary="a test's CNN")
    def tiny_test_cnn() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    try:
        assert describe_backbone("tiny_test_cnn").preprocessing == Preprocessing(32, 32)
        backbone = build_backbone("tiny_test_cnn", pretrained=False)
        assert backbone.feature_dim == 16 and "tiny_test_cnn" in registered_backbones()
        assert gradcam_layer(backbone, 32) is backbone.trunk[0]
        assert unfreeze_blocks(backbone) == [backbone.trunk[0], backbone.trunk[2]]
    finally:
        REGISTRY.pop("tiny_test_cnn")


# builds MobileNetV2 with its ImageNet weights
def test_an_imagenet_heads_class_names_come_from_the_backbones_declaration(monkeypatch):
    from dataclasses import replace

    from zoolens.models.available import imagenet_categories
    from zoolens.models.backbones import imagenet_head
    from zoolens.models.registry import REGISTRY

    names = imagenet_categories("mobilenet_v2")
    assert len(names) == 1000 and names[281] == "tabby" and imagenet_categories("efficientnet_lite0") == names
    renamed = [f"kind {i}" for i in range(1000)]
    monkeypatch.setitem(REGISTRY, "mobilenet_v2", replace(REGISTRY["mobilenet_v2"], categories=lambda: renamed))
    head, why_not = imagenet_head(build_backbone("mobilenet_v2"))
    assert why_not is None and head.categories == renamed
