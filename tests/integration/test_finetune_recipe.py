"""`--strategy recipe` applies every step it promises, each watched where it acts: the head is warmed on cached
features before the network unfreezes, earlier blocks learn at lower rates, the rates follow the warm-up and cosine
recorded in the history, label smoothing and MixUp / CutMix reach the loss, and the moving average of the weights is
what each epoch validates and what the phase keeps. unit/test_recipe_steps.py has the pieces that need no network."""

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

import zoolens
from zoolens.inference.model import Model
from zoolens.models.dense_head import FitProgress
from zoolens.training import loop, trainer
from zoolens.training.config import RECIPE, TrainConfig
from zoolens.training.recipe import RecipeSteps, layerwise_groups

CLASSES = 3


class Batches:
    """Random photos in fixed batches: `PhotoBatches`' shape, without decoding."""

    def __init__(self, batches: int = 4, size: int = 8, side: int = 32):
        generator = torch.Generator().manual_seed(0)
        self.train = [(torch.randn(size, 3, side, side, generator=generator), torch.arange(size) % CLASSES)
                      for _ in range(batches)]
        self.val = [(torch.randn(size, 3, side, side, generator=generator), torch.arange(size) % CLASSES)]

    def training(self, epoch: int):
        return self.train

    def validation(self):
        return self.val


@pytest.fixture(scope="module")
def network():
    from zoolens.models.backbones import build_backbone
    from zoolens.models.classifier import Classifier

    torch.manual_seed(0)
    return Classifier(build_backbone("mobilenet_v2", pretrained=False), 3)


def test_each_earlier_block_learns_at_a_lower_rate(network):
    from zoolens.models.backbones import unfreeze_blocks

    groups = layerwise_groups(network, 1e-3, 0.8)
    blocks = unfreeze_blocks(network.backbone)
    assert len(groups) == len(blocks) + 1 and groups[0]["name"] == "head"
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 * 0.8**depth for depth in range(len(groups))])
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in network.head.parameters()}
    assert {id(p) for p in groups[-1]["params"]} >= {id(p) for p in blocks[0].parameters()}
    placed = [id(p) for g in groups for p in g["params"]]
    assert len(placed) == len(set(placed)) == len(list(network.parameters()))  # every weight in exactly one group


def test_mixup_or_cutmix_makes_soft_targets_on_its_share_of_batches(network):
    inputs, labels = torch.rand(8, 3, 32, 32), torch.arange(8) % 3
    always = RecipeSteps(replace(RECIPE, mix_share=1.0), network, "adam", 1e-4, 4, 2, classes=3)
    mixed, targets, was_mixed = always.mixed(inputs, labels)
    assert was_mixed and targets.shape == (8, 3) and not torch.equal(mixed, inputs)
    assert torch.allclose(targets.sum(1), torch.ones(8)) and (targets.max(1).values < 1).any()  # not one-hot
    never = RecipeSteps(replace(RECIPE, mix_share=0.0), network, "adam", 1e-4, 4, 2, classes=3)
    same, plain, was_mixed = never.mixed(inputs, labels)
    assert not was_mixed and same is inputs and plain is labels
    loss = torch.nn.CrossEntropyLoss(label_smoothing=RECIPE.label_smoothing)
    logits = torch.randn(8, 3)
    assert float(loss(logits, targets)) != pytest.approx(float(loss(logits, labels)))  # the loss sees the mixing


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def watched(monkeypatch):
    """What the recipe phase did: its steps, the loss functions made, each batch as mixed, each epoch's recorded
    network (and the live one's weights then)."""
    seen = {"steps": [], "smoothing": [], "mixed": [], "recorded": []}
    start, mixed, loss_function, record = (RecipeSteps.start, RecipeSteps.mixed, loop.FabricDevice.loss_function,
                                           FitProgress.record)

    def spy_start(self, network):
        seen["steps"].append(self)
        seen["live"] = network
        return start(self, network)

    def spy_mixed(self, inputs, labels):
        out = mixed(self, inputs, labels)
        seen["mixed"].append((inputs, labels, *out))
        return out

    def spy_loss(self, class_weights, label_smoothing):
        seen["smoothing"].append(label_smoothing)
        return loss_function(self, class_weights, label_smoothing)

    def spy_record(self, row, network, patience):
        if row["phase"] == "finetune":
            seen["recorded"].append((row, network, {k: v.clone() for k, v in network.state_dict().items()},
                                     {k: v.clone() for k, v in seen["live"].state_dict().items()}))
        return record(self, row, network, patience)

    monkeypatch.setattr(RecipeSteps, "start", spy_start)
    monkeypatch.setattr(RecipeSteps, "mixed", spy_mixed)
    monkeypatch.setattr(loop.FabricDevice, "loss_function", spy_loss)
    monkeypatch.setattr(FitProgress, "record", spy_record)
    return seen


def new_network():
    from zoolens.models.backbones import build_backbone
    from zoolens.models.classifier import Classifier

    torch.manual_seed(0)
    return Classifier(build_backbone("mobilenet_v2", pretrained=False), CLASSES)


def test_a_recipe_phase_runs_every_step_and_keeps_the_weight_average(watched):
    from zoolens.training.photos import prepare_network

    _, phase = TrainConfig(strategy="recipe", epochs=3).phases()
    network = new_network()
    prepare_network(network, phase)
    optimization = loop.Optimization("adam", 1e-4, 0.0, seed=0)
    progress = loop.run_phase(phase, network, Batches(), optimization, loop.FabricDevice("cpu", 1, 1))
    steps = watched["steps"][0]
    # earlier blocks at lower rates: the optimizer's groups, head first, each block decay times the one above
    rates = [group["initial_lr"] for group in steps.optimizer.param_groups]
    assert rates == pytest.approx([RECIPE.lr * RECIPE.layer_decay**depth for depth in range(len(rates))])
    assert len(rates) == 20  # the head and MobileNetV2's 19 blocks
    # the rates reached at each epoch's end, as history records them: a linear warm-up, then a cosine to 0
    total, warm = 3 * 4, round(RECIPE.warmup * 3 * 4)
    for row in progress.rows:
        done = row["epoch"] * 4
        factor = 0.5 * (1 + math.cos(math.pi * (done - warm) / (total - warm)))
        assert row["lr"] == pytest.approx(RECIPE.lr * factor, abs=1e-12), row
        assert row["lr_first_block"] == pytest.approx(rates[-1] * factor, abs=1e-12), row
    assert progress.rows[-1]["lr"] == pytest.approx(0, abs=1e-12) and progress.rows[0]["lr"] < RECIPE.lr
    # label smoothing reaches the loss; MixUp / CutMix mixed some batches into soft targets, and the history says so
    assert watched["smoothing"] == [RECIPE.label_smoothing]
    mixed = [(inputs, targets) for inputs, labels, out, targets, was in watched["mixed"] if was]
    assert 0 < len(mixed) < len(watched["mixed"]) == 12
    assert all(targets.ndim == 2 and (targets.max(1).values < 1).any() for _, targets in mixed)
    assert sum(row["mixed"] for row in progress.rows) / 3 == pytest.approx(len(mixed) / 12)
    # the weight average is what each epoch validates and records, and what the phase ends with
    assert all(recorded is steps.average.module for _, recorded, _, _ in watched["recorded"])
    assert all(row["ema_decay"] > 0 for row in progress.rows)
    assert not states_equal(watched["recorded"][0][2], watched["recorded"][-1][2])  # the average moves with training
    best = min(watched["recorded"], key=lambda seen: seen[0]["val_loss"])
    assert progress.best_epoch == best[0]["epoch"]
    assert states_equal(network.state_dict(), best[2])
    assert not states_equal(best[2], best[3])  # the average, not the weights as trained then


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory):
    """30 of CIFAR-10's 32 px photos in each of three animal classes."""
    from zoolens.data.shared import ensure_shared_dataset

    source = ensure_shared_dataset("cifar10") / "train"
    target = tmp_path_factory.mktemp("cifar") / "animals"
    for name in ("bird", "cat", "frog"):
        (target / name).mkdir(parents=True)
        for photo in sorted((source / name).iterdir())[:30]:
            shutil.copyfile(photo, target / name / photo.name)
    return target


def test_train_by_the_recipe_warms_the_head_first_and_saves_the_average(small_cifar, tmp_path, watched,
                                                                          monkeypatch):
    warmed, copied = [], []
    copy_head, init = trainer.copy_head, RecipeSteps.__init__

    def spy_copy(head, network):
        warmed.append(np.array(head.weight.data))
        return copy_head(head, network)

    def spy_init(self, recipe, network, *args, **kwargs):
        copied.append(network.head[-1].weight.detach().numpy().copy())  # the head as the network unfreezes
        return init(self, recipe, network, *args, **kwargs)

    monkeypatch.setattr(trainer, "copy_head", spy_copy)
    monkeypatch.setattr(RecipeSteps, "__init__", spy_init)
    notes = []

    class Notes(zoolens.Callback):
        def on_note(self, message):
            notes.append(message)

    model = zoolens.train(small_cifar, tmp_path / "m", strategy="recipe", epochs=2, progress=False,
                          callbacks=[Notes()])
    phases = [row["phase"] for row in model.history]
    assert phases.index("finetune") > 0 and set(phases[:phases.index("finetune")]) == {"head"}
    assert len(warmed) == len(copied) == 1 and np.array_equal(warmed[0], copied[0])  # the warmed head, unfreezing
    assert watched["smoothing"] == [RECIPE.label_smoothing]  # the photo phase's; the head's is NumPy's
    assert any(note.startswith("recipe: 96 px input for photos of median shorter side 32 px") for note in notes)
    assert any("layer-wise rates" in note and "cosine" in note and "MixUp" in note and "EMA" in note
               for note in notes)
    loaded = Model.load(tmp_path / "m")
    assert loaded.preprocessing.input_size == 96
    assert loaded.meta["training"]["strategy"] == "recipe"
    assert [row["lr"] for row in loaded.history if row["phase"] == "finetune"] == pytest.approx(
        [row["lr"] for row in model.history if row["phase"] == "finetune"])
    # the phase kept its best epoch's weight average, or the network it started from when no epoch beat the head
    best = [note for note in notes if "at finetune epoch" in note or "no finetune epoch beat" in note]
    saved = loaded.network.state_dict()
    if "at finetune epoch" in best[0]:
        epoch = int(best[0].rsplit(" ", 1)[1])
        assert states_equal(saved, next(state for row, _, state, _ in watched["recorded"] if row["epoch"] == epoch))
    else:
        assert np.array_equal(saved["head.1.weight"].numpy(), warmed[0])
