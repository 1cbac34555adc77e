"""One training loop for every phase of a strategy: the dense head on cached features and whole networks on
photos alike, with early stopping on the validation loss, the best epoch's weights kept, resumable
checkpoints and one history row per epoch.

Written on Lightning Fabric rather than Lightning's Trainer: the Trainer's hooks and logging cost about 3 ms a
step, and a head step on cached features is a (batch x 1280) . (1280 x classes) product of about 0.1 ms
(≈ 900 steps on animals3: 2.5-3 s of a warm 10 s `zoolens train`). A phase on cached features runs on this
process's CPU with NumPy (`dense_head.NumpyDevice`), importing neither Lightning nor PyTorch; a phase through the
backbone runs on Fabric (`FabricDevice`), which puts it on the run's accelerator and wraps it in DDP when the run has
several processes. The device brings the arithmetic: its loss, its optimizers and how it evaluates without
gradients; the loop is the same.
The epochs themselves, early stopping (Lightning's EarlyStopping: a strictly lower validation loss resets the
patience, a loss that is not finite stops the phase) and the dense head are `models.dense_head`'s, the one head
trainer `zoolens data issues` fits its out-of-fold heads with too; a phase adds its checkpoints, progress and start
to beat.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoolens.models.dense_head import (
    Batch,
    FeatureBatches,
    FitProgress,
    HeadSettings,
    NumpyDevice,
    fitted_epochs,
)
from zoolens.progress import progress_bar, shown
from zoolens.training.checkpoints import TrainingCheckpoints, phase_state, strip_prefix, unflatten_optimizer_state
from zoolens.training.common import seed_everything
from zoolens.training.config import Phase
from zoolens.training.recipe import recipe_epochs

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FabricDevice", "FeatureBatches", "NumpyDevice", "Optimization", "Phase", "PhotoBatches", "head_settings",
           "run_phase"]


@dataclass(frozen=True)
class Optimization:
    """How the weights move, the same for every phase of a run."""

    optimizer: str
    weight_decay: float
    label_smoothing: float
    seed: int
    class_weights: tuple[float, ...] | None = None  # the loss's weight per class; None: every photo alike


def head_settings(config, class_weights: tuple[float, ...] | None = None) -> HeadSettings:
    """How a run's head phase fits its head (`models.dense_head.fit_dense_head`'s settings): `config` a TrainConfig
    whose strategy starts with a head on features; `class_weights` the loss's, when the run balances its classes."""
    phase = config.phases()[0]
    if phase.on != "features":
        raise ValueError(f"the {config.strategy} strategy trains no head on features")
    return HeadSettings(lr=phase.lr, epochs=phase.epochs, patience=phase.patience,
                        batch_size=max(config.batch_size, 64), dropout=config.dropout, optimizer=str(config.optimizer),
                        weight_decay=config.weight_decay, label_smoothing=config.label_smoothing, seed=config.seed,
                        class_weights=class_weights, name=str(phase.name))


class PhotoBatches:
    """Decoded (and augmented) photos from DataLoaders; `sampler` reshuffles the training photos every epoch."""

    def __init__(self, train: torch.utils.data.DataLoader, val: torch.utils.data.DataLoader,
                 sampler: torch.utils.data.DistributedSampler):
        self.train, self.val, self.sampler = train, val, sampler

    def training(self, epoch: int) -> Iterable[Batch]:
        self.sampler.set_epoch(epoch)
        return self.train

    def validation(self) -> Iterable[Batch]:
        return self.val


class FabricDevice:
    """The run's accelerator through Lightning Fabric: one GPU or CPU, or DDP over the run's processes
    (gradients averaged, sums over every process's share)."""

    def __init__(self, accelerator: str, devices: str | int, num_nodes: int):
        from lightning.fabric import Fabric

        from zoolens.runtime.distributed import in_process_group
        from zoolens.training.common import quiet_lightning

        quiet_lightning()
        strategy = "ddp" if in_process_group() else "auto"
        self.fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy)
        self.fabric.launch()  # the processes already exist (runtime.distributed started them): this only joins
        self.is_writer = self.fabric.is_global_zero

    tensors = "torch"  # how checkpoints store this device's weights

    def loss_function(self, class_weights, label_smoothing: float):
        import torch

        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)

    def optimizer(self, name: str, parameters, lr: float, weight_decay: float):
        from zoolens.training.common import make_optimizer

        return make_optimizer(name, parameters, lr, weight_decay)

    def no_grad(self):
        import torch

        return torch.inference_mode()

    def setup(self, network: nn.Module, optimizer: torch.optim.Optimizer):
        return self.fabric.setup(network, optimizer)

    def to_device(self, batch: Batch) -> Batch:
        return self.fabric.to_device(batch)

    def backward(self, loss: torch.Tensor) -> None:
        self.fabric.backward(loss)

    def total(self, values: list[float]) -> list[float]:
        if self.fabric.world_size == 1:
            return values
        import torch

        summed = self.fabric.all_reduce(torch.tensor(values, dtype=torch.float64, device=self.fabric.device),
                                        reduce_op="sum")
        return summed.tolist()

    def release(self, network: nn.Module) -> None:
        network.to("cpu")  # evaluation, the open-set fit and saving go on on the CPU


class PhaseProgress(FitProgress):
    """Where a phase stands (`FitProgress`), as its checkpoint saves and restores it."""

    @classmethod
    def restored(cls, saved: dict, tensors: dict) -> PhaseProgress:
        return cls(list(saved["history"]), _finite(saved["best_loss"]), saved["best_epoch"],
                   strip_prefix(tensors, "best.") or None, _finite(saved["stop_best"]), saved["stop_wait"],
                   saved["stopped_early"])

    def state(self) -> dict:
        return phase_state(self.rows, self.best_loss, self.best_epoch, self.waited, self.stop_best,
                           self.stopped_early)


def _finite(value: float | None) -> float:
    return math.inf if value is None else value


def run_phase(phase: Phase, network, batches: FeatureBatches | PhotoBatches, optimization: Optimization,
              device: NumpyDevice | FabricDevice | None = None, *, start_loss: float | None = None,
              checkpoints: TrainingCheckpoints | None = None, every_epoch: bool = False,
              on_epoch: Callable[[dict], None] | None = None,
              on_note: Callable[[str], None] | None = None) -> PhaseProgress:
    """Train `network` (in place) through one phase; it ends with the weights of its best validation epoch.
`network`: a `dense_head.DenseHead` on a NumpyDevice (the default), a PyTorch module on a FabricDevice.

    `start_loss`, with `phase.must_beat_start`: the validation loss of the network as it starts, which an epoch
    must beat for its weights to replace the starting ones. With `checkpoints`, the phase is saved when it ends
    and, `every_epoch`, after each epoch too, so that an interrupted run goes on from its last epoch; a phase
    found finished there is not trained again."""
    device = device or NumpyDevice()
    note = on_note or (lambda message: None)
    saved = checkpoints.phase(phase.name) if checkpoints else None
    if saved and saved["finished"]:
        network.load_state_dict(strip_prefix(checkpoints.load_tensors(phase.name, device.tensors), "network."))
        note(f"  {phase.name}: finished before the interruption ({saved['epoch']} epochs); skipped")
        return PhaseProgress.restored(saved, {})
    tensors = checkpoints.load_tensors(phase.name, device.tensors) if saved else {}
    if saved:
        network.load_state_dict(strip_prefix(tensors, "network."))
        progress = PhaseProgress.restored(saved, tensors)
        note(f"  {phase.name}: {saved['epoch']} epoch(s) restored from the checkpoint")
    elif phase.must_beat_start and start_loss is not None:
        progress = PhaseProgress(best_loss=start_loss, best_state=copy.deepcopy(network.state_dict()))
    else:
        progress = PhaseProgress()
    done = len(progress.rows)
    # Reseeded per phase: decoding workers draw from the global generator, and a warm feature cache (no workers)
    # must train exactly the same network as a cold one. A resumed phase draws new shuffles.
    seed_everything(optimization.seed + done)
    smoothing = phase.recipe.label_smoothing if phase.recipe else optimization.label_smoothing
    loss_function = device.loss_function(optimization.class_weights, smoothing)
    recipe = _recipe_steps(phase, network, batches, optimization, done) if phase.on == "photos" else None
    if recipe:
        optimizer = recipe.optimizer
        note(recipe.describe())
    else:
        optimizer = device.optimizer(optimization.optimizer, [p for p in network.parameters() if p.requires_grad],
                                     phase.lr, optimization.weight_decay)
    model, optimizer = device.setup(network, optimizer)
    if saved and saved["optimizer"] is not None:
        optimizer.load_state_dict(unflatten_optimizer_state(tensors, saved["optimizer"]))
    # One live line for the phase (epochs, rate, time left, the best validation loss so far); within an epoch over
    # photos, one more for its batches.
    show_progress = shown()  # the run's progress view, when it has one (progress.showing)
    epochs = progress_bar(phase.epochs, phase.name, "epoch", enabled=show_progress, initial=done)
    settings = dict(name=phase.name, epochs=phase.epochs, patience=phase.patience,
                    batch_bars=show_progress and phase.on == "photos")
    if recipe:
        recipe.start(network)
        epoch_rows = recipe_epochs(model, network, batches, loss_function, optimizer, device, progress, recipe,
                                   **settings)
    else:
        epoch_rows = fitted_epochs(model, network, batches, loss_function, optimizer, device, progress, **settings)
    for row in epoch_rows:
        epochs.set_postfix_str(_epoch_status(row, progress), refresh=False)
        epochs.update(1)
        if on_epoch:
            on_epoch(row)
        if checkpoints and every_epoch and device.is_writer:
            checkpoints.save_epoch(phase.name, row["epoch"], network, optimizer, progress.best_state,
                                   progress.state())
    epochs.close()
    if progress.best_state is not None:
        network.load_state_dict(progress.best_state)
    device.release(network)
    network.eval()
    if progress.best_epoch:
        note(f"  best validation loss {progress.best_loss:.4f} at {phase.name} epoch {progress.best_epoch}")
    elif start_loss is not None:
        note(f"  no {phase.name} epoch beat validation loss {start_loss:.4f}; keeping the network it started from")
    if checkpoints and device.is_writer:
        checkpoints.save_epoch(phase.name, len(progress.rows), network, None, None, progress.state(), finished=True)
    return progress


def _recipe_steps(phase: Phase, network, batches: PhotoBatches, optimization: Optimization, done: int):
    """A recipe phase's steps (training/recipe.py), or None for a phase without a recipe."""
    if phase.recipe is None:
        return None
    from zoolens.training.recipe import RecipeSteps

    return RecipeSteps(phase.recipe, network, optimization.optimizer, optimization.weight_decay, len(batches.train),
                       phase.epochs, network.head[-1].out_features, done)


def _epoch_status(row: dict, progress: PhaseProgress) -> str:
    best = f"best {progress.best_loss:.4f} (epoch {progress.best_epoch})" if progress.best_epoch else "no better yet"
    return f"val_loss {row['val_loss']:.4f}, val_acc {row['val_acc']:.1%}, {best}"
