"""One feature extractor: a backbone is a `FeatureExtractor`, several side by side a `CombinedExtractor`, which is an
extractor too; features are cached under the keys older zoolens versions used."""

import numpy as np
import pytest
from PIL import Image

from zoolens.data.transforms import Preprocessing
from zoolens.errors import ZoolensError
from zoolens.runtime import features
from zoolens.runtime.extractor import CombinedExtractor, Extractor, combined, pretrained_extractor
from zoolens.runtime.features import FeatureCache, FeatureExtractor

# The key zoolens has always cached MobileNetV2's features at 224 px under (runs of d4f0c09 and before wrote it).
MOBILENET_V2_KEY = "a46be63b43652b2e85ec"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(features, "_ENGINES", {})
    return tmp_path / "cache"


@pytest.fixture
def photos(tmp_path) -> list:
    rng = np.random.default_rng(1)
    paths = []
    for i, size in enumerate([(40, 30), (33, 50), (64, 64)]):
        paths.append(tmp_path / f"photo{i}.png")
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def tiny(key: str, width: int, prep: Preprocessing) -> FeatureExtractor:
    """An extractor of a small random CNN: exported to ONNX in a moment."""
    import torch

    torch.manual_seed(len(key) + width)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return FeatureExtractor(key, width, prep, lambda: module)


def test_features_cached_under_the_old_key_are_used(cache, photos):
    extractor = pretrained_extractor("mobilenet_v2", Preprocessing(), feature_dim=1280)
    assert extractor.key == MOBILENET_V2_KEY
    planted = np.arange(1280, dtype=np.float32)[None].repeat(len(photos), 0) + np.arange(len(photos))[:, None]
    digests = [features.file_digest(p) for p in photos]
    FeatureCache(MOBILENET_V2_KEY, 1280).put_many(dict(zip(digests, planted)))
    found = extractor.features_of_paths(photos)
    assert found.computed == 0 and found.usable.all()
    assert np.array_equal(found.features, planted)  # the old rows themselves, no network run
    assert {p.name for p in (cache / "features").iterdir() if p.suffix == ".sqlite"} == {
        "digests.sqlite", f"{MOBILENET_V2_KEY}.sqlite"}


# PyTorch's import and two ONNX exports
def test_a_combination_is_an_extractor_of_its_members_side_by_side(cache, photos, tmp_path):
    small, large = tiny("tiny-a", 4, Preprocessing(16, 18)), tiny("tiny-b", 6, Preprocessing(24, 28))
    both = combined(small, large)
    assert isinstance(both, CombinedExtractor) and isinstance(both, Extractor) and isinstance(small, Extractor)
    assert both.members == (small, large) and both.feature_dim == 10
    assert combined(both, small).members == (small, large, small) and combined(small) is small
    (tmp_path / "notes.jpg").write_text("not a photo")
    paths = photos + [tmp_path / "notes.jpg"]

    found = both.features_of_paths(paths)
    alone = [member.features_of_paths(paths) for member in both.members]
    assert np.array_equal(found.features, np.concatenate([one.features for one in alone], axis=1))
    assert found.usable.tolist() == [True, True, True, False]
    assert [path for path, _ in found.problems] == [str(tmp_path / "notes.jpg")]  # once, not once per member
    assert all(one.computed == 0 for one in alone)  # each member's features were cached under its own key
    assert {"tiny-a.sqlite", "tiny-b.sqlite"} <= {p.name for p in (cache / "features").iterdir()}
    first, second = both.parts(found.features)
    assert np.array_equal(first, alone[0].features) and np.array_equal(second, alone[1].features)

    images = [Image.open(p) for p in photos]  # each member crops them at its own size
    assert np.allclose(both.features_of_images(images), found.features[:3], atol=1e-5)
    with pytest.raises(ZoolensError, match="tiny-b: another input size than 16 px"):
        both.features_of_pixels(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ZoolensError, match="not those of"):
        both.parts(found.features[:, :7])


def test_a_frozen_model_reads_one_extractor_and_a_loaded_one_the_same(trained_model):
    from zoolens.inference.model import Model

    loaded = Model.load(trained_model.path)
    for model in (trained_model, loaded):
        assert not model.extraction.separate and isinstance(model.extractor, FeatureExtractor)
        assert model.extractor.key == MOBILENET_V2_KEY and model.feature_width == 1280
    assert loaded.extractor == trained_model.extractor
