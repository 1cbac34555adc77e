"""Explanations' parts without a real network: figures get distinct names for photos of the same name, and a CNN
that flattens into dense layers uses its last feature map. Grad-CAM on real networks: tests/integration/test_explain.py."""

from pathlib import Path

from torch import nn

from zoolens.evaluation.explain import gradcam_layer


def test_figures_get_distinct_names_for_photos_with_the_same_name(tmp_path):
    from zoolens.evaluation.explain import figure_name

    taken: set[str] = set()
    names = [figure_name(str(Path(folder) / "photo.jpg"), "gradcam", taken) for folder in ("a", "b", "c")]
    assert names == ["photo_gradcam.png", "photo-2_gradcam.png", "photo-3_gradcam.png"]


def test_cnns_that_flatten_into_dense_layers_use_their_last_feature_map():
    trunk = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 14 * 14, 32), nn.ReLU(),
    )
    assert gradcam_layer(trunk, 64) is trunk[5]
