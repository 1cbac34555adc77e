"""Fine-tuning the whole network end to end, on a small real subset, at a reduced size to fit in CI."""

from helpers import answers_without_torch

import zoolens
from zoolens.inference.model import Model
from zoolens.runtime.features import backbone_key


def test_finetuning_improves_validation_loss_over_the_frozen_head(small_animals, tmp_path):
    model = zoolens.train(small_animals, tmp_path / "ft", strategy="finetune", image_size=128, epochs=4,
                          progress=False)
    head = [row["val_loss"] for row in model.history if row["phase"] == "head"]
    tuned = [row["val_loss"] for row in model.history if row["phase"] == "finetune"]
    assert len(tuned) >= 1
    assert min(tuned) < min(head)
    assert model.evaluation.accuracy >= 0.85
    loaded = Model.load(tmp_path / "ft")
    assert loaded.meta["training"]["strategy"] == "finetune"
    assert loaded.preprocessing.input_size == 128
    assert loaded.network.backbone.info.weights_tag == "none"  # its features are its own, not the cached ones
    # Loaded without PyTorch, its features are keyed by its own weights, read from the model file.
    assert Model.load(tmp_path / "ft").feature_networks[0].key == backbone_key(model.network.backbone,
                                                                                model.preprocessing)
    photos = sorted((small_animals / "panda").iterdir())[-3:]
    assert [p.label for p in loaded.predict(photos)] == [p.label for p in model.predict(photos)]
    assert [label for _, label, _, _ in answers_without_torch(tmp_path / "ft", photos)] == ["panda"] * 3
    assert_open_set_runs_on_the_pretrained_backbone(loaded, tmp_path)


def assert_open_set_runs_on_the_pretrained_backbone(model: Model, tmp_path):
    """A fine-tuned backbone's features no longer feed the ImageNet classifier: "none of these" runs on the
    pretrained backbone beside it, so a rocket is still "no animal in the photo", not just "unlike"."""
    from PIL import Image
    from skimage import data

    from zoolens.models.open_set import NO_ANIMAL

    assert model.meta["open_set"]["features"]["backbone"] == "mobilenet_v2"
    assert model.meta["open_set"]["animal_check"] == "on" and len(model.feature_networks) == 2
    rocket = tmp_path / "rocket.jpg"
    Image.fromarray(data.rocket()).save(rocket)
    answer = model.predict(rocket)[0]
    assert answer.verdict == "none of these" and answer.reason == NO_ANIMAL, answer
