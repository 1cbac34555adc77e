"""Figures and kits without a run: the photo grid's captions and blanks, a damaged kit or one of other weights is
not used, the temperature is SciPy's bounded minimum. Drawing processes: tests/integration/test_figures_and_kits.py."""

import numpy as np
import pytest
from PIL import Image


def test_the_photo_grid_shows_each_photo_under_its_caption_and_a_blank_for_an_unreadable_one(tmp_path):
    from zoolens.evaluation.plots import PHOTO, TILE, plot_image_grid

    photos = []
    for colour in ("red", "blue"):
        photos.append(tmp_path / f"{colour}.png")
        Image.new("RGB", (80, 40), colour).save(photos[-1])
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    items = [(photos[0], "true: cats\npredicted: dogs (90%)"), (tmp_path / "broken.jpg", "a\nb"), (photos[1], "c\nd")]
    grid = np.asarray(Image.open(plot_image_grid(items, tmp_path / "grid.png", "Mistakes", columns=2)))
    assert grid.shape[1] == 2 * TILE
    middle_of = {n: grid[:, (n % 2) * TILE + TILE // 2] for n in range(3)}
    red, blue = (middle_of[0] == [255, 0, 0]).all(1), (middle_of[2] == [0, 0, 255]).all(1)
    assert red.sum() == PHOTO // 2 and blue.sum() == PHOTO // 2  # scaled up to fit, its sides kept
    assert np.flatnonzero(blue).min() > np.flatnonzero(red).max()  # the third photo starts the second row
    assert (middle_of[1][np.flatnonzero(red)] == 255).all()  # the unreadable one: white where a photo would be


def test_a_damaged_kit_or_one_of_other_weights_is_not_used(tmp_path, monkeypatch, caplog):
    from safetensors.numpy import save_file

    from zoolens.models.available import describe_backbone
    from zoolens.runtime import pretrained_kit

    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path))
    info = describe_backbone("mobilenet_v2")
    path = pretrained_kit.kit_path(info)
    path.parent.mkdir(parents=True)
    facts = {"format": pretrained_kit.KIT_FORMAT, "weights_id": info.weights_id, "feature_dim": "2",
             "parameters": "4", "no_imagenet_because": "none here", "weights_file": pretrained_kit.weights_file(info)}
    facts["content_sha256"] = pretrained_kit.content_digest(facts, {"backbone.trunk.w": np.ones((2, 2), np.float32)})
    save_file({"backbone.trunk.w": np.ones((2, 2), np.float32)}, str(path), metadata=facts)
    kit = pretrained_kit.find_kit(info)
    assert (kit.feature_dim, kit.parameters) == (2, 4) and kit.imagenet_head() == (None, "none here")
    assert list(kit.tensors()) == ["backbone.trunk.w"]
    save_file({"backbone.trunk.w": np.ones((2, 2), np.float32)}, str(path),
              metadata={**facts, "weights_id": "torchvision:mobilenet_v2:OTHER"})
    assert pretrained_kit.find_kit(info) is None
    path.write_bytes(path.read_bytes()[:40])
    assert pretrained_kit.find_kit(info) is None and "unreadable" in caplog.text


def test_the_temperature_is_scipys_bounded_minimum():
    from scipy.optimize import minimize_scalar

    from zoolens.models.probabilities import log_softmax
    from zoolens.models.dense_head import fit_temperature

    rng = np.random.default_rng(0)
    for sharpness in (0.3, 1.0, 3.0):
        logits = rng.normal(size=(300, 4)) * sharpness
        labels = rng.integers(0, 4, 300)
        logits[np.arange(200), labels[:200]] += 2  # right two times in three
        nll = lambda log_t: -log_softmax(logits / np.exp(log_t))[np.arange(300), labels].mean()  # noqa: E731
        expected = np.exp(minimize_scalar(nll, bounds=(-2, 2), method="bounded").x)
        assert fit_temperature(logits.astype(np.float32), labels) == pytest.approx(expected, rel=1e-4)
