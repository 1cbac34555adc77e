"""The head trained with NumPy (models/dense_head.py) learns as PyTorch's would: the same loss, gradients and
optimizer steps for the same weights and batches, with class weights and label smoothing; dropout keeps about
1 - p of the features, scaled up to keep their sum."""

import numpy as np
import pytest
import torch

from zoolens.training.common import make_optimizer
from zoolens.models.dense_head import CrossEntropy, DenseHead, NumpyDevice

FEATURES, CLASSES = 24, 4


def batches(seed: int, count: int = 12, size: int = 16):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, size))
            for _ in range(count)]


@pytest.mark.parametrize("weights", [None, (0.5, 2.0, 1.0, 0.0)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_loss_and_its_gradient_are_pytorchs(weights, smoothing):
    (x, y), = batches(1, count=1)
    logits = torch.tensor(x[:, :CLASSES] * 3, requires_grad=True)
    expected = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights) if weights else None,
                                         label_smoothing=smoothing)(logits, torch.from_numpy(y))
    expected.backward()
    loss = CrossEntropy(weights, smoothing)(logits.detach().numpy(), y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert np.allclose(loss.gradient, logits.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_training_steps_are_pytorchs(optimizer):
    head = DenseHead(FEATURES, CLASSES, dropout=0.0, seed=3)
    reference = torch.nn.Sequential(torch.nn.Dropout(0.0), torch.nn.Linear(FEATURES, CLASSES))
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in head.state_dict().items()})
    device = NumpyDevice()
    ours = device.optimizer(optimizer, head.parameters(), 0.01, 1e-2)
    device.setup(head, ours)
    theirs = make_optimizer(optimizer, reference.parameters(), 0.01, 1e-2)
    loss_function, reference_loss = CrossEntropy((1.0, 2.0, 0.5, 1.0), 0.1), torch.nn.CrossEntropyLoss(
        weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), label_smoothing=0.1)
    head.train()
    for x, y in batches(2):
        ours.zero_grad()
        device.backward(loss_function(head(x), y))
        ours.step()
        theirs.zero_grad()
        reference_loss(reference(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs.step()
    for name, value in reference.state_dict().items():
        assert np.allclose(head.state_dict()[name], value.numpy(), rtol=1e-4, atol=1e-6), name
    assert not np.allclose(head.state_dict()["1.weight"], DenseHead(FEATURES, CLASSES, 0.0, seed=3).weight.data)


def test_an_optimizers_state_goes_on_where_it_stopped():
    def trained(steps, restart_at=None):
        head, device = DenseHead(FEATURES, CLASSES, dropout=0.0, seed=5), NumpyDevice()
        optimizer = device.optimizer("adam", head.parameters(), 0.01, 1e-4)
        device.setup(head, optimizer)
        head.train()
        for i, (x, y) in enumerate(batches(6, count=steps)):
            if i == restart_at:
                saved, weights = optimizer.state_dict(), head.state_dict()
                head.load_state_dict(weights)
                optimizer = device.optimizer("adam", head.parameters(), 0.01, 1e-4)
                optimizer.load_state_dict(saved)
            optimizer.zero_grad()
            device.backward(CrossEntropy()(head(x), y))
            optimizer.step()
        return head.state_dict()["1.weight"]

    assert np.array_equal(trained(8), trained(8, restart_at=4))


def test_dropout_keeps_about_one_minus_p_of_the_features_and_keeps_their_scale():
    head = DenseHead(1000, 2, dropout=0.5, seed=0).train()
    x = np.ones((64, 1000), np.float32)
    head(x)
    kept = head._inputs != 0
    assert kept.mean() == pytest.approx(0.5, abs=0.01)
    assert np.all(head._inputs[kept] == 2.0)
    assert np.allclose(head.eval()(x), x @ head.weight.data.T + head.bias.data)  # no dropout once evaluating
