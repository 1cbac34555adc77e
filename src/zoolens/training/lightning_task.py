"""The Lightning pieces, for training through the backbone: one LightningModule for any classifier, and the
callbacks zoolens adds. (The dense head on cached features trains without Lightning: head_loop.py.)"""

from __future__ import annotations

import copy
import logging
import math
import warnings

import lightning.pytorch as pl
import torch
from torch import nn

from zoolens.training.checkpoints import TrainingCheckpoints, phase_state
from zoolens.training.common import epoch_line, make_optimizer

log = logging.getLogger(__name__)


def quiet_lightning() -> None:
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


class ClassificationTask(pl.LightningModule):
    """Cross-entropy training of a whole CNN on photos (fine-tuning, or from scratch)."""

    def __init__(self, network: nn.Module, optimizer: str, lr: float, weight_decay: float, label_smoothing: float):
        super().__init__()
        self.network = network
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)

    def _step(self, batch, stage: str) -> torch.Tensor:
        inputs, labels = batch
        logits = self(inputs)
        loss = self.loss(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        batch_size = len(labels)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self.network.train()  # applies the network's own rules (frozen batch-norm statistics)

    def training_step(self, batch, batch_index):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_index):
        self._step(batch, "val")

    def configure_optimizers(self):
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        return make_optimizer(self.optimizer_name, trainable, self.lr, self.weight_decay)


class EpochHistory(pl.Callback):
    """One row per epoch (train/val loss and accuracy), printed as it goes when asked."""

    def __init__(self, phase: str, total_epochs: int, echo: bool, rows_so_far: list[dict] | None = None):
        self.phase = phase
        self.total_epochs = total_epochs
        self.echo = echo
        self.rows: list[dict] = list(rows_so_far or [])
        self.first_epoch = len(self.rows)  # a resumed phase numbers its epochs on from the saved ones

    def on_train_epoch_end(self, trainer, pl_module):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        row = {"phase": self.phase, "epoch": self.first_epoch + trainer.current_epoch + 1}
        row.update({k: metrics.get(k, math.nan) for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
        self.rows.append(row)
        if self.echo and trainer.is_global_zero:
            log.info(epoch_line(row, self.total_epochs))


class KeepBestWeights(pl.Callback):
    """Restores the weights of the epoch with the lowest validation loss when training ends.

    Kept in memory instead of Lightning's ModelCheckpoint because that writes pickled checkpoint
    files, and zoolens model files hold no pickle (the bundle is written in safetensors afterwards).
    """

    def __init__(self, network: nn.Module | None = None, baseline_loss: float = math.inf):
        # With a baseline (the warm-started network's validation loss), an epoch must beat it to count:
        # fine-tuning that only makes things worse gives back the network it started from.
        self.best_loss = baseline_loss
        self.best_epoch = 0
        self.best_state: dict | None = copy.deepcopy(network.state_dict()) if network is not None else None
        self.first_epoch = 0  # set when a phase resumes after epochs already done

    def resume(self, best_loss: float | None, best_epoch: int, best_state: dict | None, first_epoch: int) -> None:
        self.best_loss = math.inf if best_loss is None else best_loss
        self.best_epoch = best_epoch
        self.best_state = best_state if best_state else self.best_state
        self.first_epoch = first_epoch

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        loss = float(trainer.callback_metrics.get("val_loss", math.inf))
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_epoch = self.first_epoch + trainer.current_epoch + 1
            self.best_state = copy.deepcopy(pl_module.network.state_dict())

    def on_fit_end(self, trainer, pl_module):
        self.restore_into(pl_module.network)

    def restore_into(self, network: nn.Module) -> None:
        if self.best_state is not None:
            network.load_state_dict(self.best_state)


class SaveEachEpoch(pl.Callback):
    """After every epoch (validation and early stopping included), save everything needed to go on."""

    def __init__(self, checkpoints: TrainingCheckpoints, phase: str, history: EpochHistory, best: KeepBestWeights,
                 stop, first_epoch: int = 0):
        self.checkpoints = checkpoints
        self.phase = phase
        self.history = history
        self.best = best
        self.stop = stop
        self.first_epoch = first_epoch
        self.optimizer_state: dict | None = None  # set when resuming; loaded once the optimizer exists

    def on_train_start(self, trainer, pl_module):
        if self.optimizer_state is not None:
            trainer.optimizers[0].load_state_dict(self.optimizer_state)

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = self.first_epoch + trainer.current_epoch + 1
        self.checkpoints.save_epoch(self.phase, epoch, pl_module.network, trainer.optimizers[0],
                                    self.best.best_state, progress_state(self.history, self.best, self.stop))


def progress_state(history: EpochHistory, best: KeepBestWeights, stop) -> dict:
    """A Lightning phase's checkpoint state, from its callbacks (`stop`: Lightning's EarlyStopping)."""
    return phase_state(history.rows, best.best_loss, best.best_epoch, int(stop.wait_count), float(stop.best_score),
                       bool(stop.wait_count >= stop.patience))
