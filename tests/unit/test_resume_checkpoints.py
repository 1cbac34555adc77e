"""Checkpoints for --resume without a training run: a kill's leftover epoch tensors are removed, a resumed phase goes
on with its optimizer state and the patience it used. Runs killed and resumed: tests/integration/test_resume.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zoolens.training.checkpoints import PROGRESS_FILE, checkpoint_folder


def test_resuming_removes_the_tensors_of_an_epoch_a_kill_left_behind(tmp_path):
    import torch

    from zoolens.training.checkpoints import TrainingCheckpoints

    out, fingerprint = tmp_path / "model", {"lr": 0.1}
    checkpoints, _ = TrainingCheckpoints.start(out, fingerprint, resume=False)
    network = torch.nn.Linear(2, 2)
    checkpoints.save_epoch("scratch", 1, network, None, None, {"history": []})
    earlier = checkpoint_folder(out) / "scratch-epoch0001.safetensors"
    kept = earlier.read_bytes()
    checkpoints.save_epoch("scratch", 2, network, None, None, {"history": []})
    earlier.write_bytes(kept)  # as if killed after progress.json named epoch 2, before epoch 1's file went
    resumed, note = TrainingCheckpoints.start(out, fingerprint, resume=True)
    assert "resuming" in note and resumed.phase("scratch")["epoch"] == 2
    assert sorted(p.name for p in checkpoint_folder(out).glob("*.safetensors")) == ["scratch-epoch0002.safetensors"]


class Interrupted(Exception):
    pass


def test_a_resumed_phase_goes_on_with_its_optimizer_state_and_its_patience_used(tmp_path, monkeypatch):
    import math

    from zoolens.training.checkpoints import TrainingCheckpoints
    from zoolens.training.loop import FeatureBatches, Optimization, Phase, run_phase
    from zoolens.models.dense_head import DenseHead, NumpyDevice

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    val = (rng.normal(size=(64, 16)).astype(np.float32), rng.integers(0, 2, 64))  # labels it cannot learn
    phase = Phase("head", "features", lr=0.05, epochs=100, patience=3)
    optimization = Optimization("adam", 0.0, 0.0, seed=0)
    batches = lambda: FeatureBatches((x, y), val, batch_size=64, seed=0)  # noqa: E731  (4 steps an epoch)

    whole = run_phase(phase, DenseHead(16, 2, dropout=0.0, seed=0), batches(), optimization)
    assert whole.stopped_early and len(whole.rows) == whole.best_epoch + 3

    optimizers, make_optimizer = [], NumpyDevice.optimizer

    def keep_optimizer(*args):
        optimizers.append(make_optimizer(*args))
        return optimizers[-1]

    monkeypatch.setattr(NumpyDevice, "optimizer", keep_optimizer)
    stop_after = whole.best_epoch + 1  # one epoch of patience used when the run dies
    checkpoints, _ = TrainingCheckpoints.start(tmp_path / "m", {"test": 1}, resume=False)
    save = checkpoints.save_epoch

    def save_then_die(name, epoch, *args, **kwargs):
        save(name, epoch, *args, **kwargs)
        if epoch == stop_after and not kwargs.get("finished"):
            raise Interrupted

    monkeypatch.setattr(checkpoints, "save_epoch", save_then_die)
    with pytest.raises(Interrupted):
        run_phase(phase, DenseHead(16, 2, dropout=0.0, seed=0), batches(), optimization, checkpoints=checkpoints,
                  every_epoch=True)
    saved = json.loads((checkpoint_folder(tmp_path / "m") / PROGRESS_FILE).read_text())["phases"]["head"]
    assert (saved["epoch"], saved["stop_wait"], saved["finished"]) == (stop_after, 1, False)

    resumed_checkpoints, _ = TrainingCheckpoints.start(tmp_path / "m", {"test": 1}, resume=True)
    resumed = run_phase(phase, DenseHead(16, 2, dropout=0.0, seed=0), batches(), optimization,
                        checkpoints=resumed_checkpoints, every_epoch=True)
    new_rows = resumed.rows[stop_after:]
    # Patience 3 with one used: it stops after at most two more epochs that do not beat the best.
    assert resumed.stopped_early and 1 <= len(new_rows) <= 2 + sum(r["val_loss"] < whole.best_loss for r in new_rows)
    before = [row["val_loss"] for row in whole.rows[:stop_after]]
    assert [row["val_loss"] for row in resumed.rows[:stop_after]] == pytest.approx(before)  # the saved epochs kept
    adam = optimizers[-1]
    steps = [int(state["step"]) for state in adam.state.values()]
    assert steps and set(steps) == {4 * len(resumed.rows)}  # Adam's step count went on from the saved state
    assert all(math.isfinite(r["val_loss"]) for r in resumed.rows)
