"""The report's parts on made-up numbers: confused pairs, thumbnails, the training rows and the fine-tuning phase's
sentence. The report of a trained model: tests/integration/test_report.py."""

import pytest
from helpers import decode
from PIL import Image

from zoolens.evaluation.report import confused_pairs


def test_confused_pairs_are_the_largest_off_diagonal_cells():
    import numpy as np

    matrix = np.array([[50, 7, 3], [1, 40, 0], [9, 0, 30]])
    pairs = confused_pairs(matrix, ["cat", "dog", "fox"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("fox", "cat", 9), ("cat", "dog", 7), ("cat", "fox", 3), ("dog", "cat", 1)]
    assert pairs[0]["share"] == "23.1%"


@pytest.mark.parametrize("size", [(300, 200), (120, 400)])
def test_thumbnails_are_small_jpegs(size):
    from zoolens.evaluation.report import THUMBNAIL_SIZE, data_uri

    image = decode(data_uri(Image.new("RGB", (size[0] * 3, size[1] * 3), "orange"), max_side=THUMBNAIL_SIZE))
    assert image.format == "JPEG" and max(image.size) == THUMBNAIL_SIZE


def test_training_rows_point_to_the_phases_only_for_what_the_phases_resolve():
    from zoolens.evaluation.report import training_rows

    phases = [{"name": "head", "on": "features", "lr": 0.001, "epochs": 60, "patience": 8}]
    rows = dict(training_rows({"training": {"lr": None, "epochs": None, "image_size": None, "workers": None,
                                            "phases": phases}}))
    assert rows["lr"] == rows["epochs"] == "default (see phases)"
    assert rows["image size"] == rows["workers"] == "default"
    assert rows["phases"] == "head on features: learning rate 0.001, at most 60 epochs, patience 8"
    assert dict(training_rows({"training": {"lr": None}}))["lr"] == "default"  # a model from before the phases


def test_a_fine_tuning_phase_says_what_trained_and_that_it_had_to_beat_the_head():
    from dataclasses import asdict

    from zoolens.evaluation.report import training_rows
    from zoolens.training.config import TrainConfig

    phases = [asdict(p) for p in TrainConfig(strategy="finetune", unfreeze=4, epochs=3).phases()]
    shown = dict(training_rows({"training": {"phases": phases}}))["phases"]
    assert shown == ("head on features: learning rate 0.001, at most 60 epochs, patience 8; finetune on photos: the "
                     "last 4 blocks and the head, learning rate 3e-05, at most 3 epochs, patience 8, kept only where "
                     "it beat the network it started from")
    scratch = [asdict(p) for p in TrainConfig(strategy="scratch").phases()]
    assert dict(training_rows({"training": {"phases": scratch}}))["phases"].startswith(
        "scratch on photos: the whole network, learning rate 0.001, at most 10 epochs")
