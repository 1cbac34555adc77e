"""Training on small real subsets of the shared photos: the model must really learn."""

import json

import numpy as np
import pytest
from helpers import copy_subset, tree_snapshot

import zoolens
from zoolens.evaluation.evaluate import evaluate
from zoolens.inference.model import Model


def test_frozen_transfer_learning_learns_animals(trained_model):
    # 180 photos (60 per class), 36 held out: chance is 33 %.
    assert trained_model.evaluation is not None
    assert len(trained_model.evaluation.y_true) == 36
    assert trained_model.evaluation.accuracy >= 0.9
    assert trained_model.history[0]["phase"] == "head"
    losses = [row["val_loss"] for row in trained_model.history]
    assert min(losses) < losses[0] / 8  # measured: 0.84 at the first epoch, 0.062 at the best (epoch 35)
    assert len(losses) == losses.index(min(losses)) + 1 + 8 or len(losses) == 60  # stopped 8 epochs after the best


def test_bundle_is_self_describing_and_holds_no_pickle(trained_model):
    folder = trained_model.path
    names = {p.name for p in folder.iterdir()}
    assert {"zoolens.json", "model.safetensors", "split.csv", "history.csv", "training_curves.png"} <= names
    assert not [p for p in folder.rglob("*") if p.suffix in (".pt", ".pth", ".ckpt", ".pkl")]
    meta = json.loads((folder / "zoolens.json").read_text())
    assert meta["classes"] == ["cats", "dogs", "panda"]
    assert meta["backbone"]["name"] == "mobilenet_v2"
    assert meta["preprocessing"]["input_size"] == 224
    assert meta["training"]["optimizer"] == "adam"
    assert meta["metrics"]["accuracy"] == pytest.approx(trained_model.evaluation.accuracy)
    assert meta["zoolens_version"] == zoolens.__version__
    for name in ("confusion_matrix.png", "misclassified.png", "metrics.json", "classification_report.txt"):
        if name == "misclassified.png" and trained_model.evaluation.accuracy == 1.0:
            continue
        assert (folder / "evaluation" / name).stat().st_size > 0


def test_loaded_model_predicts_like_the_trained_one(trained_model, other_animals):
    loaded = Model.load(trained_model.path)
    photos = sorted((other_animals / "panda").iterdir())[:5]
    before = trained_model.predict(photos)
    after = loaded.predict(photos)
    for a, b in zip(before, after):
        assert a.top[0][0] == b.top[0][0] and a.top[0][1] == pytest.approx(b.top[0][1], abs=1e-4)
    assert [p.label for p in after] == ["panda"] * 5


def test_scikit_image_cat_is_a_cat(trained_model):
    from PIL import Image
    from skimage import data

    prediction = trained_model.predict(Image.fromarray(data.chelsea()), top_k=3)[0]
    assert prediction.label == "cats"
    assert len(prediction.top) == 3 and sum(p for _, p in prediction.top) == pytest.approx(1.0, abs=1e-5)


def test_min_confidence_gives_an_honest_not_sure(trained_model, other_animals):
    photo = sorted((other_animals / "dogs").iterdir())[0]
    sure = trained_model.predict(photo, min_confidence=0.0)[0]
    unsure = trained_model.predict(photo, min_confidence=1.01)[0]
    assert sure.label is not None
    assert unsure.label is None and unsure.answer == "not sure"


def test_evaluate_uses_the_test_part_on_the_training_folder_and_all_photos_elsewhere(trained_model, small_animals,
                                                                                      other_animals):
    model = Model.load(trained_model.path)
    own = evaluate(model, small_animals, progress=False)
    assert "test part" in own.description and len(own.y_true) == 36
    elsewhere = evaluate(model, other_animals, progress=False)
    assert "all photos" in elsewhere.description and len(elsewhere.y_true) == 60
    assert elsewhere.accuracy >= 0.9


def test_training_leaves_the_users_folder_exactly_as_it_was(small_animals, tmp_path):
    data = copy_subset(small_animals, tmp_path / "mine", per_class=12)
    before = tree_snapshot(data)
    zoolens.train(data, tmp_path / "model", progress=False, epochs=3)
    assert tree_snapshot(data) == before


def test_bad_photos_are_skipped_and_named_training_goes_on(small_animals, tmp_path, animals3):
    data = copy_subset(small_animals, tmp_path / "messy", per_class=15)
    (data / "cats" / "empty.jpg").write_bytes(b"")
    (data / "dogs" / "text.jpg").write_text("not a photo")
    whole = next((animals3 / "panda").iterdir()).read_bytes()
    (data / "panda" / "cut.jpg").write_bytes(whole[: len(whole) // 3])
    (data / "lonely").mkdir()
    model = zoolens.train(data, tmp_path / "model", progress=False, epochs=5)
    skipped = {entry["path"].rsplit("/", 1)[-1]: entry["reason"] for entry in model.meta["data"]["skipped"]}
    assert "empty" in skipped["empty.jpg"]
    assert "not an image" in skipped["text.jpg"]
    assert "damaged" in skipped["cut.jpg"]
    assert "no usable images" in skipped["lonely"]
    assert model.classes == ["cats", "dogs", "panda"]


def test_the_feature_cache_serves_a_second_run_without_the_backbone(small_animals, tmp_path, monkeypatch, caplog):
    import logging

    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path / "empty-cache"))  # not the session's, already warm
    caplog.set_level(logging.INFO, logger="zoolens")
    first = zoolens.train(small_animals, tmp_path / "first", epochs=2)
    assert "  180 photos through the backbone, 0 from the cache" in caplog.messages
    caplog.clear()
    second = zoolens.train(small_animals, tmp_path / "second", epochs=2, optimizer="sgd", lr=0.01)
    assert "  0 photos through the backbone, 180 from the cache" in caplog.messages
    assert second.evaluation.accuracy >= first.evaluation.accuracy - 1 / 36  # the same features, another head


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_other_optimizers_learn_too(small_animals, tmp_path, optimizer):
    lr = 0.01 if optimizer == "sgd" else 1e-3
    model = zoolens.train(small_animals, tmp_path / optimizer, progress=False, optimizer=optimizer, lr=lr)
    assert model.evaluation.accuracy >= 0.85


def test_efficientnet_lite0_backbone_offline(small_animals, tmp_path):
    model = zoolens.train(small_animals, tmp_path / "lite", progress=False, backbone="efficientnet_lite0")
    assert model.evaluation.accuracy >= 0.9
    assert Model.load(tmp_path / "lite").network.backbone.info.name == "efficientnet_lite0"


def test_imagewoof_subset_presplit_uses_val_as_test(imagewoof, tmp_path):
    data = tmp_path / "woof"
    copy_subset(imagewoof / "train", data / "train", per_class=30)
    copy_subset(imagewoof / "val", data / "val", per_class=10)
    model = zoolens.train(data, tmp_path / "model", progress=False)
    assert len(model.evaluation.y_true) == 100
    assert model.evaluation.accuracy >= 0.6  # 10 dog breeds: chance is 10 %
    assert np.isfinite(model.temperature) and model.temperature > 0


def test_a_photo_replaced_under_the_same_name_gets_new_features(small_animals, tmp_path):
    """Warm runs trust the stat stamp of a file instead of re-hashing it; a write must still be seen."""
    import os
    import shutil

    from zoolens.models.backbones import build_backbone
    from zoolens.runtime.features import extract_features

    cat, panda = sorted((small_animals / "cats").glob("*.jpg"))[0], sorted((small_animals / "panda").glob("*.jpg"))[0]
    photo = tmp_path / "photo.jpg"
    shutil.copy(cat, photo)
    backbone = build_backbone("mobilenet_v2")
    prep = backbone.info.preprocessing.at_size(64)
    as_cat = extract_features([photo], backbone, prep, progress=False).features[0]
    mtime = os.stat(photo).st_mtime_ns
    shutil.copyfile(panda, photo)
    os.utime(photo, ns=(mtime, mtime))  # even with the old modification time (ctime still changes)
    as_panda = extract_features([photo], backbone, prep, progress=False).features[0]
    expected = extract_features([panda], backbone, prep, progress=False).features[0]
    assert not np.allclose(as_cat, as_panda)
    assert np.allclose(as_panda, expected, atol=1e-5)


def test_frozen_training_does_not_import_lightning(small_animals, tmp_path):
    import subprocess
    import sys

    script = (f"import sys, zoolens; zoolens.train({str(small_animals)!r}, {str(tmp_path / 'm')!r}, progress=False); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"  # 2.5 s of imports a frozen run does without


def test_a_frozen_model_on_cached_features_trains_without_pytorch_into_the_same_files(small_animals, tmp_path):
    """The first run builds the backbone and keeps it as a kit in the cache; the next, with every photo's features
    cached, trains, checks, evaluates and saves without importing PyTorch or scikit-learn, into the same model."""
    from helpers import HEAVY, run_without_torch

    code = "import zoolens\nzoolens.train(sys.argv[1], sys.argv[2], progress=False)"
    env = {"ZOOLENS_CACHE": str(tmp_path / "cache")}
    cold = run_without_torch(code, small_animals, tmp_path / "cold", env=env, allow=HEAVY)
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert list((tmp_path / "cache" / "kits").iterdir())
    warm = run_without_torch(code, small_animals, tmp_path / "warm", env=env, allow=("matplotlib",))
    assert warm.returncode == 0, warm.stderr[-2000:]
    for name in ("model.safetensors", "evaluation/metrics.json", "split.csv", "history.csv"):
        assert (tmp_path / "cold" / name).read_bytes() == (tmp_path / "warm" / name).read_bytes(), name
    assert safetensors_content(tmp_path / "cold" / "open_set.safetensors") == safetensors_content(
        tmp_path / "warm" / "open_set.safetensors")  # its metadata's order differs from one process to the next
    described = [json.loads((tmp_path / run / "zoolens.json").read_text()) for run in ("cold", "warm")]
    for meta in described:
        del meta["created"], meta["training"]["seconds"]
    assert described[0] == described[1]
    model = Model.load(tmp_path / "warm")
    assert np.array_equal(model.network.head[-1].weight.detach().numpy(), model.head.weight)  # and PyTorch loads it
    assert sum(p.numel() for p in model.network.parameters()) == described[1]["parameters"]


def safetensors_content(path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return handle.metadata(), {name: handle.get_tensor(name).tobytes() for name in handle.keys()}
