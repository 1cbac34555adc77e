"""Grad-CAM and saliency: the right layer per architecture, maps on the animal, batches, the command."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from zoolens.cli import main
from zoolens.errors import ZoolensError
from zoolens.evaluation.explain import (
    Explainable,
    explain,
    gradcam_layer,
    gradcam_maps,
    heat_share,
)
from zoolens.models.backbones import build_backbone

# Backbone -> (the module Grad-CAM must use, as a function of the zoolens trunk; a small input size).
FAMILIES = {
    "resnet18": (lambda trunk: trunk.layer4, 96),
    "vgg16": (lambda trunk: trunk[0], 96),  # zoolens' trunk: Sequential(features, GAP, Flatten)
    "inception_v3": (lambda trunk: trunk.Mixed_7c, 139),
    "mobilenet_v2": (lambda trunk: trunk.features[-1], 96),
    "efficientnet_lite0": (lambda trunk: trunk.bn2, 96),  # timm
    "efficientnet_b0": (lambda trunk: trunk.features[-1], 96),  # torchvision
    "densenet121": (lambda trunk: trunk.features, 96),
    "convnext_tiny": (lambda trunk: trunk.features[-1], 96),
}


# The big networks take 5 to 20 s each on a busy CPU: the fast tier checks resnet18, mobilenet_v2 and timm's
# efficientnet_lite0, the full suite every family.
BIG = {"vgg16", "inception_v3", "efficientnet_b0", "densenet121", "convnext_tiny"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in BIG else name
                                  for name in FAMILIES])
def test_gradcam_layer_is_the_last_feature_map_of_each_family(name):
    torch.manual_seed(0)  # untrained weights and random photos: the same ones every run (ReLU can zero them all)
    expected, size = FAMILIES[name]
    backbone = build_backbone(name, pretrained=False)
    layer = gradcam_layer(backbone, size)
    assert layer is expected(backbone.trunk)

    shapes = []
    hook = layer.register_forward_hook(lambda _m, _i, output: shapes.append(tuple(output.shape)))
    # A plain linear head on the pooled features (flattened, whatever the trunk returns).
    network = nn.Sequential(backbone, nn.Flatten(), nn.Linear(backbone.feature_dim, 3)).eval()
    images = torch.randn(4, 3, size, size)
    maps = gradcam_maps(network, layer, images, torch.tensor([0, 1, 2, 0]))
    hook.remove()
    # The map that is pooled into the features: as many channels, still spatial.
    assert shapes[0][1] == backbone.feature_dim and min(shapes[0][2:]) > 1
    assert all(m.shape == (size, size) and np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1 for m in maps)
    assert any(m.max() == pytest.approx(1.0) for m in maps)  # ReLU may zero one map, not all of them


@pytest.mark.parametrize(
    "name, expected",
    [("resnet18", lambda m: m.layer4), ("mobilenet_v2", lambda m: m.features[-1]), ("vgg11", lambda m: m.features)],
)
def test_gradcam_layer_in_the_full_imagenet_networks(name, expected):
    import torchvision

    network = torchvision.models.get_model(name, weights=None)
    assert gradcam_layer(network) is expected(network)


def test_other_timm_networks_fall_back_to_their_last_spatial_stage_and_transformers_are_refused():
    import timm

    regnet = timm.create_model("regnetx_002", pretrained=False)
    assert gradcam_layer(regnet, 96) is regnet.s4
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    with pytest.raises(ZoolensError, match="saliency"):
        gradcam_layer(vit, 224)


# ---- does Grad-CAM look at the animal? ----------------------------------------------------------
# Boxes around the animal in the network's view (the 224 px centre crop), as fractions
# (left, top, right, bottom), drawn by looking at the crops. These photos are not in the training part.
ANIMAL_BOXES = {
    "cats/cats_00520.jpg": (0.0, 0.0, 0.5, 1.0),  # tabby filling the left half
    "cats/cats_00524.jpg": (0.1, 0.0, 0.9, 0.75),  # black kitten on a red blanket
    "cats/cats_00528.jpg": (0.45, 0.0, 1.0, 1.0),  # cat on the right, basket on the left
    "dogs/dogs_00505.jpg": (0.25, 0.05, 0.8, 1.0),  # dog sitting in the garden
    "panda/panda_00507.jpg": (0.2, 0.0, 0.75, 1.0),  # panda among leaves
    "panda/panda_00511.jpg": (0.25, 0.0, 0.72, 0.75),  # small panda behind bamboo
    "panda/panda_00521.jpg": (0.0, 0.4, 0.5, 1.0),  # panda at the bottom left, fence and people right
}


def chelsea_on_grass() -> tuple[Image.Image, tuple[float, float, float, float]]:
    """skimage's cat photo, scaled down and pasted onto grass, and the cat's box in the network's view
    (448 px canvas -> shorter side 256 -> centre 224 crop)."""
    from skimage import data

    canvas = Image.fromarray(data.grass()).convert("RGB").resize((448, 448))
    left, top, width, height = 170, 60, 240, 160
    canvas.paste(Image.fromarray(data.chelsea()).resize((width, height)), (left, top))
    scale, offset = 256 / 448, (256 - 224) / 2

    def to_view(v):
        return float(np.clip((v * scale - offset) / 224, 0, 1))

    return canvas, tuple(to_view(v) for v in (left, top, left + width, top + height))


def test_gradcam_concentrates_on_the_animal(trained_model, animals3):
    cat_photo, cat_box = chelsea_on_grass()
    images = [cat_photo] + [animals3 / name for name in ANIMAL_BOXES]
    boxes = [cat_box] + list(ANIMAL_BOXES.values())
    expected = ["cats"] + [name.split("/")[0] for name in ANIMAL_BOXES]
    explanations = explain(trained_model, images, "gradcam")

    shares = []
    for explanation, box, label in zip(explanations, boxes, expected):
        assert explanation.label == label, explanation.source
        inside, area = heat_share(explanation.heatmaps["gradcam"], box)
        shares.append((inside, area))
        # A uniform or random map puts `area` of its mass in the box; Grad-CAM clearly more.
        assert inside > area + 0.15, f"{explanation.source}: {inside:.2f} of the heat in a box of {area:.2f}"
    ratios = [inside / area for inside, area in shares]
    assert np.mean(ratios) > 1.5
    assert shares[0][0] > 2 * shares[0][1]  # the cat on grass: a quarter of the view, over half of the heat


# saliency on CPU: 6 s
def test_saliency_also_lies_on_the_animal(trained_model):
    cat_photo, cat_box = chelsea_on_grass()
    explanation, = explain(trained_model, cat_photo, "saliency")
    inside, area = heat_share(explanation.heatmaps["saliency"], cat_box)
    assert inside > 2 * area  # measured: 0.59 of the gradient's mass in the cat's quarter of the view


# the ImageNet network loaded and explained: 5 s
def test_imagenet_network_explains_the_cat_too():
    cat_photo, cat_box = chelsea_on_grass()
    explanation, = explain(Explainable.imagenet("mobilenet_v2"), cat_photo, "gradcam")
    assert "cat" in explanation.label
    inside, area = heat_share(explanation.heatmaps["gradcam"], cat_box)
    assert inside > 1.6 * area


# ---- batches, bad files, state -------------------------------------------------------------------
# both methods on four photos: 17 s
def test_batches_keep_order_and_name_unusable_files(trained_model, other_animals, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    photos = sorted((other_animals / "panda").iterdir())[:2] + [broken] + sorted((other_animals / "dogs").iterdir())[:2]
    explanations = explain(trained_model, photos, "both", batch_size=2)

    assert [e.source for e in explanations] == [str(p) for p in photos]
    assert explanations[2].error and explanations[2].label is None and str(broken) == explanations[2].source
    for explanation in explanations[:2] + explanations[3:]:
        assert explanation.error is None and explanation.label in trained_model.classes
        assert explanation.image.size == (224, 224)
        assert set(explanation.heatmaps) == {"gradcam", "saliency"}
        for heat in explanation.heatmaps.values():
            assert heat.shape == (224, 224) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    # Explaining the class it predicts: the same answer the model gives.
    predicted = trained_model.predict(photos[:2])
    assert [e.label for e in explanations[:2]] == [p.label for p in predicted]


def test_explain_leaves_the_network_as_it_found_it(trained_model, other_animals):
    network = trained_model.network
    photo = sorted((other_animals / "cats").iterdir())[0]
    flags = [p.requires_grad for p in network.parameters()]
    try:
        network.set_backbone_trainable(False)
        network.train()
        with torch.no_grad():  # the caller's no_grad must not stop the gradients Grad-CAM needs
            explanation, = explain(trained_model, [photo], "gradcam")
        assert explanation.heatmaps["gradcam"].max() > 0
        assert network.training
        assert not any(p.requires_grad for p in network.backbone.parameters())
    finally:
        network.eval()
        for parameter, flag in zip(network.parameters(), flags):
            parameter.requires_grad = flag


def test_unknown_method_is_a_clear_error(trained_model):
    with pytest.raises(ValueError, match="^method: "):
        explain(trained_model, [Image.new("RGB", (64, 64))], "lime")


# ---- the command ---------------------------------------------------------------------------------
# both methods on three photos: 6 s
def test_explain_command_writes_one_figure_per_photo(trained_model, other_animals, tmp_path, capsys):
    photos = sorted((other_animals / "cats").iterdir())[:2] + sorted((other_animals / "panda").iterdir())[:1]
    out = tmp_path / "explained"
    assert main(["explain", str(trained_model.path), *map(str, photos), "--method", "both", "--out", str(out)]) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == sorted(f"{p.stem}_both.png" for p in photos)
    with Image.open(written[0]) as figure:
        assert figure.width > 2.5 * 224  # photo, Grad-CAM, saliency side by side
    printed = capsys.readouterr().out
    assert "cats" in printed and "panda" in printed and "%" in printed


def test_explain_command_errors_are_one_line(trained_model, tmp_path, capsys):
    missing = tmp_path / "missing.jpg"
    assert main(["explain", str(trained_model.path), str(missing)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"zoolens: error: {missing}: file not found"
    assert main(["explain", str(tmp_path / "no-model"), str(missing)]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_explain_imagenet_command(tmp_path, capsys):
    photo = tmp_path / "chelsea.png"
    chelsea_on_grass()[0].save(photo)
    assert main(["explain", "--imagenet", str(photo), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "chelsea_gradcam.png").is_file()
    assert "cat" in capsys.readouterr().out


def test_explaining_a_chosen_class(trained_model, other_animals):
    photo = sorted((other_animals / "panda").iterdir())[0]
    first, last = explain(trained_model, [photo, photo], "gradcam", targets=[0, 2])
    assert (first.label, last.label) == (trained_model.classes[0], trained_model.classes[2])
    assert not np.allclose(first.heatmaps["gradcam"], last.heatmaps["gradcam"])
