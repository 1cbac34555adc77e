"""The training loop on made-up features: head dropout only in training, early stopping that keeps the best epoch,
a phase that must beat its start. Training on photos: tests/integration/test_training.py."""

import numpy as np
import pytest


def test_head_dropout_drops_and_rescales_in_training_only():
    import torch

    from zoolens.models.classifier import Dropout

    dropout = Dropout(0.3).train()
    out = dropout(torch.ones(200_000))
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.01
    assert abs(float(out.mean()) - 1.0) < 0.01  # survivors scaled by 1 / 0.7
    assert torch.equal(dropout.eval()(torch.ones(10)), torch.ones(10))


def test_training_loop_stops_early_and_keeps_its_best_epoch():
    from zoolens.training.loop import FeatureBatches, Optimization, Phase, run_phase
    from zoolens.models.dense_head import CrossEntropy, DenseHead

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    val = (rng.normal(size=(60, 16)).astype(np.float32), rng.integers(0, 2, 60))  # labels it cannot learn
    head = DenseHead(16, 2, dropout=0.0, seed=0)
    fit = run_phase(Phase("head", "features", lr=0.05, epochs=200, patience=3), head,
                    FeatureBatches((x, y), val, batch_size=32, seed=0), Optimization("adam", 0.0, 0.0, seed=0))
    assert fit.stopped_early and len(fit.rows) == fit.best_epoch + 3 < 200
    assert fit.best_loss == min(row["val_loss"] for row in fit.rows)
    loss = CrossEntropy()(head.eval()(val[0]), val[1])  # the weights it ended with are those of the best epoch
    assert loss.item() == pytest.approx(fit.best_loss, rel=1e-5)
    assert fit.rows[-1]["train_acc"] > 0.9


def test_a_phase_that_must_beat_its_start_keeps_the_start_when_no_epoch_does():
    from zoolens.training.loop import FeatureBatches, Optimization, Phase, run_phase
    from zoolens.models.dense_head import DenseHead

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    head = DenseHead(8, 2, dropout=0.0, seed=0)
    start = head.state_dict()
    # An unreachable loss to beat, as a warm network that fine-tuning only makes worse.
    fit = run_phase(Phase("finetune", "features", lr=0.05, epochs=4, patience=10, must_beat_start=True), head,
                    FeatureBatches((x, y), (x, y), batch_size=32, seed=0), Optimization("sgd", 0.0, 0.0, seed=0),
                    start_loss=1e-9)
    assert len(fit.rows) == 4 and fit.best_epoch == 0
    for name, array in head.state_dict().items():
        assert np.array_equal(array, start[name]), name
