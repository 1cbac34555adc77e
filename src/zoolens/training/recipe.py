"""The fine-tuning recipe's steps on photos (`training.config.Recipe`, `--strategy recipe`), each from the library
that defines it: the optimizer's parameter groups, one per block, at rates falling by `layer_decay` from the head down
(timm's layer-wise decay, fastai's discriminative rates); PyTorch's LinearLR warm-up into CosineAnnealingLR, stepped
every batch; torchvision's MixUp / CutMix on a share of the batches, their soft targets into PyTorch's cross-entropy
with label smoothing; timm's ModelEmaV3, the moving average of the weights, which is what each epoch validates and what
the phase keeps. The head was warmed before (the strategy's head phase on cached features, with the same label
smoothing), and the input size is chosen for the photos (`sized_for_photos`).

The epochs go through `models.dense_head`'s FitProgress (the best epoch kept, a start to beat, early stopping) and
`validate`, as every phase does; only the training pass is the recipe's own, since its steps act on every batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from zoolens.models.dense_head import FitProgress, validate
from zoolens.progress import tracked
from zoolens.training.common import make_optimizer
from zoolens.training.config import Recipe, TrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

SIZE_SAMPLE = 100  # training photos whose sizes choose the input size
SIZE_STEP = 32  # input sizes are multiples of this (the networks' total stride)
SMALLEST_INPUT = 96


def sized_for_photos(config: TrainConfig, photos: list[Path],
                     note: Callable[[str], None] = lambda message: None) -> TrainConfig:
    """The recipe's input size, when none is asked for: the backbone's own, unless the photos are so small (their
    median shorter side times `upscale` under it) that they are enlarged `upscale` times instead, which costs a
    fraction of the backbone's size (CIFAR's 32 px photos: 96 px, a fifth of the work of 224 px)."""
    recipe = config.phases()[-1].recipe
    if recipe is None or config.image_size:
        return config
    from zoolens.models.available import describe_backbone

    backbone_size = describe_backbone(config.backbone).preprocessing.input_size
    sides = sorted(side for side in map(_shorter_side, photos[:SIZE_SAMPLE]) if side)
    if not sides:
        return config
    wanted = max(SMALLEST_INPUT, math.ceil(sides[len(sides) // 2] * recipe.upscale / SIZE_STEP) * SIZE_STEP)
    if wanted >= backbone_size:
        return config
    note(f"recipe: {wanted} px input for photos of median shorter side {sides[len(sides) // 2]} px "
         f"(enlarged {recipe.upscale}x; {config.backbone}'s own size is {backbone_size} px)")
    return replace(config, image_size=wanted)


def _shorter_side(path: Path) -> int | None:
    from PIL import Image

    try:
        with Image.open(path) as image:  # the header only; a photo that cannot be read is left to the run to report
            return min(image.size)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def layerwise_groups(network: nn.Module, lr: float, layer_decay: float) -> list[dict]:
    """The trainable parameters as optimizer groups: the head at `lr`, the backbone's last block at lr * decay, the
    one before at lr * decay², ... (`models.backbones.unfreeze_blocks` says what a block is); parameters outside
    every block (none in the declared backbones) learn with the first block."""
    from zoolens.models.backbones import unfreeze_blocks

    blocks = unfreeze_blocks(network.backbone)
    groups = [{"name": "head", "params": [p for p in network.head.parameters() if p.requires_grad], "lr": lr}]
    placed = {id(p) for p in network.head.parameters()}
    for depth, block in enumerate(reversed(blocks), start=1):
        params = [p for p in block.parameters() if p.requires_grad and id(p) not in placed]
        placed.update(id(p) for p in params)
        groups.append({"name": f"block {len(blocks) - depth}", "params": params, "lr": lr * layer_decay ** depth})
    rest = [p for p in network.parameters() if p.requires_grad and id(p) not in placed]
    groups[-1]["params"] += rest
    return [group for group in groups if group["params"]]


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float):
    """Each group's rate rising linearly from 1 % over the first `warmup` share of the steps, then down a cosine to 0;
    stepped once a batch."""
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    warm = min(max(1, round(warmup * total_steps)), max(1, total_steps - 1))
    return SequentialLR(optimizer, [LinearLR(optimizer, start_factor=0.01, total_iters=warm),
                                    CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warm))], milestones=[warm])


def batch_mixer(recipe: Recipe, classes: int):
    """MixUp or CutMix, one of the two at random, on a whole batch: (images, labels) -> (mixed images, soft targets)."""
    from torchvision.transforms import v2

    return v2.RandomChoice([v2.MixUp(alpha=recipe.mixup_alpha, num_classes=classes),
                            v2.CutMix(alpha=recipe.cutmix_alpha, num_classes=classes)])


class RecipeSteps:
    """A recipe phase's optimizer, schedule, batch mixing and weight average, for `network` (its head warmed)."""

    def __init__(self, recipe: Recipe, network: nn.Module, optimizer_name: str, weight_decay: float,
                 steps_per_epoch: int, epochs: int, classes: int, done_epochs: int = 0):
        import warnings

        self.recipe = recipe
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = self.steps_per_epoch * epochs
        self.optimizer = make_optimizer(optimizer_name, layerwise_groups(network, recipe.lr, recipe.layer_decay),
                                        recipe.lr, weight_decay)
        self.schedule = warmup_cosine(self.optimizer, self.total_steps, recipe.warmup)
        self.mixer = batch_mixer(recipe, classes)
        # A resumed phase: the schedule put where it had got to, before the optimizer's saved state is loaded
        self.step = done_epochs * self.steps_per_epoch
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            for _ in range(self.step):
                self.schedule.step()
        self.average = None  # made by `start`, once the network is on its device

    def start(self, network: nn.Module) -> None:
        """The weight average, begun from `network` as it is (a resumed phase's begins again from the restored
        weights)."""
        from timm.utils import ModelEmaV3

        self.average = ModelEmaV3(network, decay=self.recipe.ema_decay, use_warmup=True)

    def mixed(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The batch mixed (`mix_share` of the batches), its targets then soft; else as it came."""
        import torch

        if len(labels) < 2 or float(torch.rand(())) >= self.recipe.mix_share:
            return inputs, labels, False
        inputs, targets = self.mixer(inputs, labels)
        return inputs, targets, True

    def after_step(self, network: nn.Module) -> None:
        self.schedule.step()
        self.step += 1
        self.average.update(network, step=self.step)

    def rates(self) -> dict:
        """The rates the next batch learns at: the head's and the backbone's first block's."""
        return {"lr": self.optimizer.param_groups[0]["lr"], "lr_first_block": self.optimizer.param_groups[-1]["lr"]}

    def describe(self) -> str:
        """The recipe's steps as this phase runs them, for the run's log."""
        r, groups = self.recipe, self.optimizer.param_groups
        return (f"  recipe: head warmed on cached features first; {len(groups)} parameter groups at layer-wise rates "
                f"{groups[0]['initial_lr']:.1e} (head) down to {groups[-1]['initial_lr']:.1e} (decay {r.layer_decay}); "
                f"{r.warmup:.0%} linear warm-up then cosine, over {self.total_steps} steps; label smoothing "
                f"{r.label_smoothing}; MixUp (alpha {r.mixup_alpha}) or CutMix (alpha {r.cutmix_alpha}) on "
                f"{r.mix_share:.0%} of the batches; weight EMA (decay up to {r.ema_decay}) validated and kept")


def recipe_epochs(model, network, batches, loss_function, optimizer, device, progress: FitProgress, steps: RecipeSteps,
                  *, name: str, epochs: int, patience: int, batch_bars: bool = False) -> Iterator[dict]:
    """`dense_head.fitted_epochs` for a recipe phase: each epoch trained with the recipe's steps, then its weight
    average validated and recorded (the average is what `progress` keeps); its history row adds the rates reached,
    the share of batches mixed and the average's decay."""
    for epoch in range(len(progress.rows) + 1, epochs + 1):
        if progress.stopped_early:
            return
        train_loss, train_acc, mixed = _train_epoch(model, network, batches.training(epoch - 1), loss_function,
                                                    optimizer, device, steps,
                                                    f"{name} epoch {epoch}" if batch_bars else None)
        val_loss, val_acc = validate(steps.average.module, batches.validation(), loss_function, device)
        row = {"phase": name, "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "val_loss": val_loss, "val_acc": val_acc, **steps.rates(), "mixed": mixed,
               "ema_decay": steps.average.get_decay(steps.step)}
        progress.record(row, steps.average.module, patience)
        yield row


def _train_epoch(model, network, batches, loss_function, optimizer, device, steps: RecipeSteps,
                 bar_title: str | None) -> tuple[float, float, float]:
    """One pass over the training batches, each mixed or not, a step of the schedule and the average after each;
    the loss (against the targets trained on) and accuracy (against the photos' own labels) over every process's
    photos, and the share of batches mixed."""
    model.train()
    loss_sum, correct, seen, mixed, count = 0.0, 0, 0, 0, 0
    if bar_title:
        batches = tracked(batches, len(batches), bar_title, "batch")
    for batch in batches:
        inputs, labels = device.to_device(batch)
        inputs, targets, was_mixed = steps.mixed(inputs, labels)
        logits = model(inputs)
        loss = loss_function(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        device.backward(loss)
        optimizer.step()
        steps.after_step(network)
        loss_sum += loss.item() * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        mixed += was_mixed
        count += 1
    loss_sum, correct, seen, mixed, count = device.total([loss_sum, correct, seen, mixed, count])
    return loss_sum / max(seen, 1), correct / max(seen, 1), mixed / max(count, 1)
