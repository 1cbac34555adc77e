"""The dense head on cached features, trained with NumPy: dropout, one linear layer, PyTorch's cross-entropy (class
weights, label smoothing) and its AdamW, Nesterov SGD and RMSprop updates, behind the interfaces `loop.run_phase`
uses (module, loss, optimizer, device), so that the one training loop runs it.

Written out rather than run on PyTorch: a whole head phase on animals3 (2100 photos × 1280 features, 25 epochs) takes
0.5-0.6 s here (1.2 s with PyTorch), while importing PyTorch takes 1.5-4.6 s and was most of a warm `zoolens train`
(python -X importtime, cProfile, benchmarks/train_time.py). A model whose backbone stays frozen is trained, evaluated and saved
without importing PyTorch at all. tests/test_numpy_head.py holds every piece equal to PyTorch's, step by step.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from zoolens.models.probabilities import log_softmax

Batch = tuple[np.ndarray, np.ndarray]


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
        return [self.val]
