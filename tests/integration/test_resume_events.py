"""A resumed training run tells its callbacks every epoch of the model once, in the order trained: the epochs restored
from `<out>.partial/` through `on_epoch_end` as the training step starts, then the new ones (training/run.py)."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import copy_subset

import zoolens
from zoolens.training.checkpoints import PROGRESS_FILE, TrainingCheckpoints, checkpoint_folder
from zoolens.training.run import Callback


class Epochs(Callback):
    """Each epoch row told, with the step it came in."""

    def __init__(self):
        self.rows: list[dict] = []
        self.steps: list[str] = []
        self.in_step: list[str] = []

    def on_step_start(self, step):
        self.steps.append(step)

    def on_epoch_end(self, row):
        self.rows.append(row)
        self.in_step.append(self.steps[-1])


class StopAfter(Callback):
    """Stops the run as an epoch ends: the checkpoint keeps the epochs before it."""

    def __init__(self, phase: str, epoch: int):
        self.phase, self.epoch = phase, epoch

    def on_epoch_end(self, row):
        if row["phase"] == self.phase and row["epoch"] == self.epoch:
            raise RuntimeError(f"stopped at {self.phase} epoch {self.epoch}")


@pytest.fixture(scope="module")
def tiny_animals(small_animals, tmp_path_factory):
    return copy_subset(small_animals, tmp_path_factory.mktemp("tiny") / "animals", per_class=30)


# slow: two frozen runs (5-10 s)
def test_a_finished_phase_restored_is_told_to_the_callbacks(tiny_animals, tmp_path, monkeypatch):
    out = tmp_path / "model"
    # As if interrupted after the head finished but before the model was saved: its checkpoint stays.
    monkeypatch.setattr(TrainingCheckpoints, "remove", lambda self: None)
    first = zoolens.train(tiny_animals, out, progress=False, image_size=64, epochs=5)
    monkeypatch.undo()
    shutil.rmtree(out)  # no finished model: the checkpoint is what resume finds
    seen = Epochs()
    again = zoolens.train(tiny_animals, out, progress=False, image_size=64, epochs=5, resume=True, callbacks=[seen])
    assert len(first.history) >= 1 and seen.rows == first.history == again.history
    assert set(seen.in_step) == {"training"}


# slow: a small CNN trained from scratch on photos, stopped and resumed (5-15 s)
def test_a_phase_resumed_midway_tells_its_restored_epochs_then_the_new_ones(tiny_animals, tmp_path):
    out = tmp_path / "model"
    options = dict(progress=False, strategy="scratch", backbone="seed002_baseline", image_size=64, epochs=5,
                   patience=50)
    with pytest.raises(RuntimeError, match="stopped"):
        zoolens.train(tiny_animals, out, callbacks=[StopAfter("scratch", 3)], **options)
    saved = json.loads((checkpoint_folder(out) / PROGRESS_FILE).read_text())["phases"]["scratch"]
    assert saved["epoch"] == 2 and not saved["finished"]  # epoch 3 stopped the run before its checkpoint
    seen = Epochs()
    model = zoolens.train(tiny_animals, out, resume=True, callbacks=[seen], **options)
    assert [row["epoch"] for row in seen.rows] == [1, 2, 3, 4, 5]
    assert seen.rows == model.history
    assert seen.rows[:2] == saved["history"]  # the restored rows as they were saved, not trained again
