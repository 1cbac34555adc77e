"""The dense head on features, trained with NumPy, and the epoch loop that fits it: dropout, one linear layer,
PyTorch's cross-entropy (class weights, label smoothing) and its AdamW, Nesterov SGD and RMSprop updates, behind the
interfaces the loop uses (module, loss, optimizer, device). `fit_dense_head` is the one head trainer: `zoolens
train`'s head phase (through `training.loop.run_phase`, which adds checkpoints and progress to the same epochs),
k-fold and tuning (which train through `train()`) and `zoolens data issues`' out-of-fold heads all fit a head here.
Below evaluation, so that data issues may use it; the loop's steps are device-agnostic, and `training.loop` runs
networks through the backbone with them too.

Written out rather than run on PyTorch: a whole head phase on animals3 (2100 photos × 1280 features, 25 epochs) takes
0.5-0.6 s here (1.2 s with PyTorch), while importing PyTorch takes 1.5-4.6 s and was most of a warm `zoolens train`
(python -X importtime, cProfile, benchmarks/train_time.py). A model whose backbone stays frozen is trained, evaluated
and saved without importing PyTorch at all. tests/test_dense_head.py holds every piece equal to PyTorch's, step by
step.
Early stopping follows Lightning's EarlyStopping: a strictly lower validation loss resets the patience, and a loss
that is not finite stops the fit.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.models.probabilities import log_softmax, softmax
from zoolens.progress import tracked

Batch = tuple[Any, Any]  # (inputs, labels): NumPy arrays on a NumpyDevice, tensors on training.loop's FabricDevice


class Parameter:
    """A weight array and its gradient (None until a backward pass, and after `zero_grad`)."""

    requires_grad = True

    def __init__(self, data: np.ndarray):
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.grad: np.ndarray | None = None


class DenseHead:
    """Dropout, then a dense layer from `feature_dim` features to `classes` logits; its state has the names of the
    PyTorch head's (`models.classifier.build_head`: "1.weight", "1.bias"), so either loads the other's."""

    def __init__(self, feature_dim: int, classes: int, dropout: float, seed: int):
        self.random = np.random.default_rng(seed)
        bound = 1 / math.sqrt(feature_dim)  # nn.Linear's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self.weight = Parameter(self.random.uniform(-bound, bound, (classes, feature_dim)))
        self.bias = Parameter(self.random.uniform(-bound, bound, classes))
        self.dropout = dropout
        self.training = False
        self._inputs: np.ndarray | None = None  # the last training batch after dropout, for the backward pass

    def parameters(self) -> list[Parameter]:
        return [self.weight, self.bias]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"1.weight": self.weight.data.copy(), "1.bias": self.bias.data.copy()}

    def load_state_dict(self, state) -> None:
        self.weight.data = np.array(state["1.weight"], dtype=np.float32)
        self.bias.data = np.array(state["1.bias"], dtype=np.float32)

    def train(self, mode: bool = True) -> DenseHead:
        self.training = mode
        return self

    def eval(self) -> DenseHead:
        return self.train(False)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        if self.training and self.dropout:
            keep = 1.0 - self.dropout
            mask = self.random.random(features.shape, dtype=np.float32) < keep
            features = features * mask * np.float32(1.0 / keep)
        if self.training:
            self._inputs = features
        return features @ self.weight.data.T + self.bias.data

    def backward(self, gradient: np.ndarray) -> None:
        """Gradients of the weights from those of the last training batch's logits."""
        self.weight.grad = gradient.T @ self._inputs
        self.bias.grad = gradient.sum(0)


class Loss:
    """A batch's mean loss and its gradient with respect to the batch's logits."""

    def __init__(self, value: float, gradient: np.ndarray):
        self.value, self.gradient = value, gradient

    def item(self) -> float:
        return self.value

    __float__ = item


class CrossEntropy:
    """PyTorch's `nn.CrossEntropyLoss(weight, label_smoothing)` with the mean over a batch: each photo weighs its
    class's weight, and the mean divides by the sum of those weights."""

    def __init__(self, weight: tuple[float, ...] | None = None, label_smoothing: float = 0.0):
        self.weight = np.asarray(weight, dtype=np.float64) if weight is not None else None
        self.smoothing = label_smoothing

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> Loss:
        z = np.asarray(logits, dtype=np.float64)
        count, classes = z.shape
        log_p = log_softmax(z)
        weight = self.weight if self.weight is not None else np.ones(classes)
        rows = np.arange(count)
        per_photo = weight[labels]
        total = per_photo.sum()
        nll = -(per_photo * log_p[rows, labels]).sum() / total
        smooth = -(log_p * weight).sum() / total
        value = (1 - self.smoothing) * nll + self.smoothing / classes * smooth
        p = np.exp(log_p)
        one_hot = np.zeros_like(p)
        one_hot[rows, labels] = 1.0
        gradient = ((1 - self.smoothing) * per_photo[:, None] * (p - one_hot)
                    + self.smoothing / classes * (p * weight.sum() - weight)) / total
        return Loss(float(value), gradient.astype(np.float32))


class Optimizer:
    """What the loop asks of an optimizer; `state_dict` in PyTorch's layout (state per parameter index, then the
    param group), so that checkpoints store it the same way."""

    def __init__(self, parameters: list[Parameter], lr: float, weight_decay: float, **hyper):
        self.parameters = list(parameters)
        self.group = {"lr": lr, "weight_decay": weight_decay, **hyper}
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        for index, parameter in enumerate(self.parameters):
            if parameter.grad is not None:
                self.update(parameter.data, parameter.grad, self.state.setdefault(index, {}))

    def update(self, weights: np.ndarray, gradient: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"state": {i: {k: np.array(v) for k, v in s.items()} for i, s in self.state.items()},
                "param_groups": [{**self.group, "params": list(range(len(self.parameters)))}]}

    def load_state_dict(self, saved: dict) -> None:
        # A step count comes back from safetensors with shape (1,) where it was saved with shape ().
        self.state = {int(i): {k: np.array(v, dtype=np.float32).reshape(() if k == "step" else np.shape(v))
                               for k, v in s.items()} for i, s in saved["state"].items()}


class AdamW(Optimizer):
    """`torch.optim.AdamW`: decoupled weight decay, betas (0.9, 0.999), eps 1e-8."""

    def __init__(self, parameters, lr: float, weight_decay: float):
        super().__init__(parameters, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8)

    def update(self, weights, gradient, state) -> None:
        lr, (beta1, beta2), eps = self.group["lr"], self.group["betas"], self.group["eps"]
        if not state:
            state.update(step=np.zeros((), np.float32), exp_avg=np.zeros_like(weights),
                         exp_avg_sq=np.zeros_like(weights))
        state["step"] += 1
        step = float(state["step"])
        weights *= np.float32(1 - lr * self.group["weight_decay"])
        state["exp_avg"] += (gradient - state["exp_avg"]) * np.float32(1 - beta1)
        state["exp_avg_sq"] *= np.float32(beta2)
        state["exp_avg_sq"] += np.float32(1 - beta2) * gradient * gradient
        denominator = np.sqrt(state["exp_avg_sq"]) / np.float32(math.sqrt(1 - beta2 ** step)) + np.float32(eps)
        weights -= np.float32(lr / (1 - beta1 ** step)) * state["exp_avg"] / denominator


class NesterovSGD(Optimizer):
    """`torch.optim.SGD(momentum=0.9, nesterov=True)` with L2 weight decay added to the gradient."""

    def __init__(self, parameters, lr: float, weight_decay: float):
        super().__init__(parameters, lr, weight_decay, momentum=0.9, nesterov=True)

    def update(self, weights, gradient, state) -> None:
        gradient = gradient + np.float32(self.group["weight_decay"]) * weights
        momentum = np.float32(self.group["momentum"])
        if not state:
            state["momentum_buffer"] = gradient.copy()
        else:
            state["momentum_buffer"] *= momentum
            state["momentum_buffer"] += gradient
        weights -= np.float32(self.group["lr"]) * (gradient + momentum * state["momentum_buffer"])


class RMSprop(Optimizer):
    """`torch.optim.RMSprop`: alpha 0.99, eps 1e-8, L2 weight decay added to the gradient."""

    def __init__(self, parameters, lr: float, weight_decay: float):
        super().__init__(parameters, lr, weight_decay, alpha=0.99, eps=1e-8)

    def update(self, weights, gradient, state) -> None:
        gradient = gradient + np.float32(self.group["weight_decay"]) * weights
        alpha = np.float32(self.group["alpha"])
        if not state:
            state.update(step=np.zeros((), np.float32), square_avg=np.zeros_like(weights))
        state["step"] += 1
        state["square_avg"] *= alpha
        state["square_avg"] += (1 - alpha) * gradient * gradient
        weights -= np.float32(self.group["lr"]) * gradient / (np.sqrt(state["square_avg"]) + np.float32(
            self.group["eps"]))


OPTIMIZERS = {"adam": AdamW, "sgd": NesterovSGD, "rmsprop": RMSprop}


class NumpyDevice:
    """This process's CPU with NumPy, alone: for the head on cached features, which every process fits the same way."""

    is_writer = True
    tensors = "numpy"  # how checkpoints store this device's weights

    def __init__(self):
        self.network: DenseHead | None = None

    def loss_function(self, class_weights, label_smoothing: float) -> CrossEntropy:
        return CrossEntropy(class_weights, label_smoothing)

    def optimizer(self, name: str, parameters, lr: float, weight_decay: float) -> Optimizer:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
        return OPTIMIZERS[name](parameters, lr, weight_decay)

    def setup(self, network: DenseHead, optimizer: Optimizer):
        self.network = network
        return network, optimizer

    def to_device(self, batch: Batch) -> Batch:
        return batch

    def backward(self, loss: Loss) -> None:
        self.network.backward(loss.gradient)

    def no_grad(self):
        return contextlib.nullcontext()

    def total(self, values: list[float]) -> list[float]:
        return values

    def release(self, network: DenseHead) -> None:
        pass


class FeatureBatches:
    """Cached features in memory: a new shuffle of the training rows every epoch, validation in one batch."""

    def __init__(self, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], batch_size: int,
                 seed: int):
        self.x, self.y = train
        self.val = val
        self.batch_size = batch_size
        self.shuffle = np.random.default_rng(seed)

    def training(self, epoch: int):
        order = self.shuffle.permutation(len(self.y))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            yield self.x[rows], self.y[rows]

    def validation(self):
        return [self.val] if len(self.val[1]) else []


# ---- the epoch loop ------------------------------------------------------------------------------------------
@dataclass
class FitProgress:
    """Where a fit stands: its history, the best epoch so far and the early-stopping counter."""

    rows: list[dict] = field(default_factory=list)
    best_loss: float = math.inf  # the loss an epoch must beat for its weights to be kept
    best_epoch: int = 0
    best_state: dict | None = None
    stop_best: float = math.inf  # early stopping's own best, which a start to beat does not set
    waited: int = 0
    stopped_early: bool = False

    def record(self, row: dict, network, patience: int) -> None:
        self.rows.append(row)
        loss = row["val_loss"]
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, row["epoch"]
            self.best_state = copy.deepcopy(network.state_dict())
        if loss < self.stop_best:
            self.stop_best, self.waited = loss, 0
        else:
            self.waited += 1
        self.stopped_early = self.waited >= patience or not math.isfinite(loss)


def fitted_epochs(model, network, batches, loss_function, optimizer, device, progress: FitProgress, *, name: str,
                  epochs: int, patience: int, batch_bars: bool = False) -> Iterator[dict]:
    """The epochs of one fit, each trained and validated and then recorded in `progress` (early stopping, the best
    weights kept), yielded as its history row; ends after `epochs` or when early stopping says so. `model`: the
    network as the device set it up (DDP-wrapped on several processes), `network`: the one whose weights are kept."""
    for epoch in range(len(progress.rows) + 1, epochs + 1):
        if progress.stopped_early:
            return
        train_loss, train_acc = train_epoch(model, batches.training(epoch - 1), loss_function, optimizer, device,
                                            f"{name} epoch {epoch}" if batch_bars else None)
        val_loss, val_acc = validate(model, batches.validation(), loss_function, device)
        row = {"phase": name, "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "val_loss": val_loss, "val_acc": val_acc}
        progress.record(row, network, patience)
        yield row


def train_epoch(model, batches: Iterable[Batch], loss_function, optimizer, device,
                bar_title: str | None) -> tuple[float, float]:
    """One pass over the training batches; the loss and accuracy over every process's photos."""
    model.train()  # applies the network's own rules (frozen batch-norm statistics)
    loss_sum, correct, seen = 0.0, 0, 0
    if bar_title:
        batches = tracked(batches, _length(batches), bar_title, "batch")
    for batch in batches:
        inputs, labels = device.to_device(batch)
        logits = model(inputs)
        loss = loss_function(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        device.backward(loss)
        optimizer.step()
        loss_sum += loss.item() * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    loss_sum, correct, seen = device.total([loss_sum, correct, seen])
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def _length(batches) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def validate(model, batches: Iterable[Batch], loss_function, device) -> tuple[float, float]:
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with device.no_grad():
        for batch in batches:
            inputs, labels = device.to_device(batch)
            logits = model(inputs)
            loss_sum += float(loss_function(logits, labels)) * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
    loss_sum, correct, seen = device.total([loss_sum, correct, seen])
    return loss_sum / max(seen, 1), correct / max(seen, 1)


# ---- the one head trainer ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadSettings:
    """How a dense head on features is fitted. The defaults are `zoolens train`'s for its head (TrainConfig's: adam
    at 1e-3, up to 60 epochs, patience 8, dropout 0.5, weight decay 1e-4, batches of max(batch_size, 64));
    `training.loop.head_settings(config)` makes them from a run's config, and a test holds the two equal."""

    lr: float = 1e-3
    epochs: int = 60
    patience: int = 8
    batch_size: int = 64
    dropout: float = 0.5
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    class_weights: tuple[float, ...] | None = None  # the loss's weight per class; None: every photo alike
    name: str = "head"  # the history rows' phase


def fit_dense_head(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None = None,
                   val_y: np.ndarray | None = None, *, classes: int | None = None,
                   settings: HeadSettings = HeadSettings()) -> tuple[DenseHead, FitProgress]:
    """A dense head fitted on features, and how the fit went: early stopping on the validation loss, ending with
    its best epoch's weights; without validation features, every epoch runs and the last one's weights stay.
    `classes`: how many logits (default: one more than the largest label). The head's generator and its batches'
    are seeded by `settings.seed`: the same features and labels give the same weights."""
    classes = classes or int(np.max(train_y)) + 1
    head = DenseHead(train_x.shape[1], classes, settings.dropout, settings.seed)
    validated = val_x is not None and len(val_x) > 0
    batches = FeatureBatches((train_x, train_y), (val_x, val_y) if validated else (train_x[:0], train_y[:0]),
                             settings.batch_size, settings.seed)
    device = NumpyDevice()
    loss_function = device.loss_function(settings.class_weights, settings.label_smoothing)
    optimizer = device.optimizer(settings.optimizer, head.parameters(), settings.lr, settings.weight_decay)
    model, optimizer = device.setup(head, optimizer)
    progress = FitProgress()
    patience = settings.patience if validated else settings.epochs  # nothing to stop on: every epoch runs
    for _ in fitted_epochs(model, head, batches, loss_function, optimizer, device, progress, name=settings.name,
                           epochs=settings.epochs, patience=patience):
        pass
    if validated and progress.best_state is not None:
        head.load_state_dict(progress.best_state)
    head.eval()
    return head, progress


def head_probabilities(head: DenseHead, features: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, classes) softmax of the head's logits divided by `temperature`, dropout off."""
    head.eval()
    return softmax(np.asarray(head(np.asarray(features, dtype=np.float32)), dtype=np.float64) / temperature)


# ---- its calibration -------------------------------------------------------------------------------------------
MIN_CALIBRATION_PHOTOS = 50


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al., 2017) on validation photos, so that confidences mean what they say: the
    temperature `zoolens train` calibrates its head with and `zoolens data issues` its out-of-fold heads.

    Left at 1 when the validation part is too small or has no mistake: the fit then only drives the
    temperature towards zero, making every answer look certain."""
    if len(labels) < MIN_CALIBRATION_PHOTOS or (logits.argmax(1) == labels).all():
        return 1.0

    logits = logits.astype(np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[rows, labels].mean())

    return float(np.exp(golden_section_minimum(nll, -2.0, 2.0)))


def golden_section_minimum(f, low: float, high: float, tolerance: float = 1e-7) -> float:
    """Where a function with one minimum in [low, high] (the loss over the log-temperature is convex) is lowest.
    scipy.optimize.minimize_scalar(method="bounded") finds the same to its 1e-5, but importing scipy.optimize takes
    0.5-0.7 s (python -X importtime), a fifth of a warm `zoolens train`'s 3 s target."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tolerance:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2
