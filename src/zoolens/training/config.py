"""What a training run is asked to do (`TrainConfig`) and the phases it resolves to (`Phase`): plain data, checked
without loading PyTorch, so that a wrong setting is refused at once and the command line's help stays fast."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar

from zoolens.choices import (
    AT_LEAST_1,
    DEFAULT_BACKBONE,
    DEFAULT_RATIOS,
    ENSEMBLE_JOIN,
    Balance,
    Constraint,
    GroupBy,
    Interval,
    OneOf,
    Optimizer,
    PhaseKind,
    PhaseName,
    Preset,
    Satisfies,
    Strategy,
    as_members,
    check_parameters,
    ensemble_members,
    plain,
)
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S
from zoolens.data.split import parse_ratios
from zoolens.data.transforms import Augmentation
from zoolens.errors import ConfigError, setting
from zoolens.models.open_set import DEFAULT_SHARE

OPTIMIZERS = Optimizer.values()


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning the way timm and fastai do it, every step on (`--strategy recipe`; training/recipe.py runs it):
    the head warmed first on cached frozen features (the head phase), then the whole network with lower rates for
    earlier blocks (layer-wise decay), a linear warm-up into a cosine decay stepped every batch, label smoothing,
    MixUp or CutMix on a share of the batches, and the moving average (EMA) of the weights, which is what is validated
    and kept; at an input size chosen for the photos (small photos enlarged `upscale` times)."""

    lr: float = 1e-3  # the head's peak rate; the backbone's last block lr * layer_decay, its first lr * decay ** blocks
    layer_decay: float = 0.8  # 0.8 ** 19 blocks of MobileNetV2: the first at 1/70 of the head (fastai's slice: 1/100)
    warmup: float = 0.2  # share of the phase's steps
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.4
    cutmix_alpha: float = 1.0
    mix_share: float = 0.5  # of the training batches, mixed by MixUp or CutMix (one of the two at random)
    ema_decay: float = 0.998  # at most: timm's warm-up of the decay keeps it lower over the first steps
    epochs: int = 2  # an epoch of 4200 photos at 96 px: about half an hour on this busy 2-core CPU (measurements.md)
    upscale: int = 3  # photos whose shorter side is under the backbone's input size / upscale are enlarged so much

    def to_dict(self) -> dict:
        return asdict(self)


RECIPE = Recipe()


@dataclass(frozen=True)
class Phase:
    """One stage of a training strategy, resolved before training starts (and recorded in zoolens.json)."""

    name: PhaseName
    on: PhaseKind  # FEATURES: the dense head on cached frozen features; PHOTOS: through the backbone
    lr: float
    epochs: int  # at most: early stopping on the validation loss ends it sooner
    patience: int
    unfreeze: int | None = None  # on photos: the backbone's last blocks that train (0: all of them)
    learns_batchnorm: bool = False  # on photos: batch-norm statistics learnt (a new network) or kept (pretrained)
    must_beat_start: bool = False  # keep the network it started from unless an epoch beats its validation loss
    recipe: Recipe | None = None  # --strategy recipe: its label smoothing on the head, all its steps on photos

    def to_dict(self) -> dict:
        """Plain data for zoolens.json: the name and kind as their words."""
        return {name: plain(value) for name, value in asdict(self).items()}


STRATEGIES = Strategy.values()
BALANCES = Balance.values()
# Whole-network learning rates: adaptive optimizers' first steps move every weight by about lr, so they
# need a small one (measured: 1e-4 made validation loss worse than the warm head, 3e-5 improved on it).
HEAD_LR = {Optimizer.ADAM: 1e-3, Optimizer.RMSPROP: 1e-3, Optimizer.SGD: 1e-2}
# SGD at 1e-3 collapsed on CIFAR animals (measured)
FINETUNE_LR = {Optimizer.ADAM: 3e-5, Optimizer.RMSPROP: 3e-5, Optimizer.SGD: 1e-4}
SCRATCH_LR = {Optimizer.ADAM: 1e-3, Optimizer.RMSPROP: 1e-3, Optimizer.SGD: 1e-2}
# Where and how fast a run goes, not what it learns: left out when comparing runs' settings.
WHERE_IT_RUNS = ("accelerator", "devices", "num_nodes", "workers")


@dataclass
class TrainConfig:
    backbone: str = DEFAULT_BACKBONE
    strategy: Strategy = Strategy.FROZEN
    optimizer: Optimizer = Optimizer.ADAM
    lr: float | None = None  # default: 1e-3 for the head, FINETUNE_LR when fine-tuning
    epochs: int | None = None  # default: 60 for the head (early stopping ends it sooner), 5 fine-tuning
    batch_size: int = 32
    patience: int = 8
    weight_decay: float = 1e-4
    dropout: float = 0.5  # measured best of 0.2/0.5 on animals3 (98.7 % vs 98.3 %) with Imagewoof within noise
    label_smoothing: float = 0.0
    ratios: str = DEFAULT_RATIOS
    seed: int = 0
    # What the split keeps in one part (data.grouping): None, the data's own way (camera-trap labels by event, class
    # folders photo by photo), or event / camera / site / none
    group_by: GroupBy | None = None
    sequence_gap: float = DEFAULT_SEQUENCE_GAP_S  # seconds between two frames of one event
    image_size: int | None = None  # default: the backbone's own input size
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    head_epochs: int = 60
    unfreeze: int = 0  # fine-tuning: how many of the backbone's last blocks train (0: all)
    accelerator: str = "auto"
    devices: str | int = "auto"  # per machine; more than one trains with DDP, one process per device
    num_nodes: int = 1
    workers: int | None = None
    open_set_share: float = DEFAULT_SHARE  # of the validation photos the open-set check may turn away
    balance: Balance = Balance.NONE
    preset: Preset | None = None  # a fixed recipe (PRESETS): its settings replace these fields' defaults

    # What each setting may be, declared once; `validate` walks it in this order, then the rules between settings.
    PARAMETER_CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "backbone": Satisfies(lambda name: check_backbone(name)),
        "preset": Satisfies(lambda name: preset_recipe(name), optional=True),
        "strategy": OneOf(Strategy),
        "balance": OneOf(Balance),
        "optimizer": OneOf(Optimizer),
        "lr": Interval(numbers.Real, 0, None, closed="neither", optional=True),
        "epochs": Interval(numbers.Integral, 0, None, closed="neither", optional=True),
        "image_size": Interval(numbers.Integral, 0, None, closed="neither", optional=True),
        "ratios": Satisfies(parse_ratios),
        "group_by": OneOf(GroupBy, optional=True),
        "sequence_gap": Interval(numbers.Real, 0, None, closed="left", words="0 seconds or more"),
        "unfreeze": Interval(numbers.Integral, 0, None, closed="left", words="0 (all blocks) or more"),
        "num_nodes": AT_LEAST_1,
        "batch_size": AT_LEAST_1,
        "dropout": Interval(numbers.Real, 0, 1, closed="left"),
        "open_set_share": Interval(numbers.Real, 0, 0.5, closed="neither"),
        "head_epochs": AT_LEAST_1,
        "patience": Interval(numbers.Integral, 0, None, closed="left"),
        "weight_decay": Interval(numbers.Real, 0, None, closed="left"),
        "label_smoothing": Interval(numbers.Real, 0, 1, closed="both"),
        "seed": Interval(numbers.Integral, 0, None, closed="left"),
        "workers": Interval(numbers.Integral, 0, None, closed="left", optional=True),
    }

    def __post_init__(self):
        for name, member in as_members(self, self.PARAMETER_CONSTRAINTS).items():
            setattr(self, name, member)
        if self.preset is not None:
            settings = preset_recipe(self.preset)
            self.preset = Preset(self.preset)
            for name, value in settings.items():
                if getattr(self, name) not in (value, DEFAULTS[name]):
                    raise ConfigError(name, f"{getattr(self, name)}: not with {setting('preset')} {self.preset}, "
                                            f"which sets it to {value}")
                setattr(self, name, value)

    def validate(self) -> None:
        """Refuses, in one line naming the field, the first setting out of its declared constraints, then the
        settings that do not go together."""
        check_parameters(self, self.PARAMETER_CONSTRAINTS)
        if self.is_ensemble and self.strategy != Strategy.FROZEN:
            raise ConfigError("strategy", f"{self.strategy}: an ensemble ({self.backbone}) trains frozen, one head on "
                                          "its members' features side by side; fine-tuning takes one backbone")
        if self.unfreeze and self.strategy != Strategy.FINETUNE:
            raise ConfigError("unfreeze", f"chooses which blocks fine-tuning trains: it needs {setting('strategy')} "
                                          f"finetune, not {self.strategy}")

    def phases(self) -> list[Phase]:
        """The strategy as data: what trains in turn, on what, at which learning rate and for how many epochs.
        `lr` and `epochs` apply to the strategy's last phase; the others keep their defaults."""
        frozen = self.strategy == Strategy.FROZEN
        head = Phase(PhaseName.HEAD, PhaseKind.FEATURES, self.lr if frozen and self.lr else HEAD_LR[self.optimizer],
                     self.epochs if frozen and self.epochs else self.head_epochs, self.patience)
        if self.strategy == Strategy.FROZEN:
            return [head]
        if self.strategy == Strategy.FINETUNE:
            return [head, Phase(PhaseName.FINETUNE, PhaseKind.PHOTOS, self.lr or FINETUNE_LR[self.optimizer],
                                self.epochs or 5, self.patience, unfreeze=self.unfreeze, must_beat_start=True)]
        if self.strategy == Strategy.RECIPE:
            recipe = replace(RECIPE, lr=self.lr or RECIPE.lr,
                             label_smoothing=self.label_smoothing or RECIPE.label_smoothing)
            return [replace(head, recipe=recipe),
                    Phase(PhaseName.FINETUNE, PhaseKind.PHOTOS, recipe.lr, self.epochs or recipe.epochs, self.patience,
                          unfreeze=0, learns_batchnorm=True, must_beat_start=True, recipe=recipe)]
        return [Phase(PhaseName.SCRATCH, PhaseKind.PHOTOS, self.lr or SCRATCH_LR[self.optimizer], self.epochs or 10,
                      self.patience, unfreeze=0, learns_batchnorm=True)]

    @property
    def is_ensemble(self) -> bool:
        """Whether `backbone` names several backbones, side by side ("mobilenet_v2+efficientnet_lite2")."""
        return ENSEMBLE_JOIN in self.backbone

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from pretrained weights (and its frozen features are cached)."""
        return self.phases()[0].on == PhaseKind.FEATURES

    @property
    def trains_backbone(self) -> bool:
        """Whether the backbone's weights change, so that its features are no longer the pretrained ones."""
        return any(phase.on == PhaseKind.PHOTOS for phase in self.phases())

    def on_one_device(self) -> TrainConfig:
        """For studies, k-fold and tuning, which train one model after another in this one process."""
        if str(self.devices) not in ("auto", "1") or self.num_nodes != 1:
            raise ConfigError("devices", "must be 1 (or auto) for studies, k-fold and tuning, which train one model at "
                                         "a time; several devices are for zoolens train")
        return replace(self, devices=1)

    def to_dict(self) -> dict:
        """Plain data for zoolens.json and history: every choice as its word."""
        data = {name: plain(value) for name, value in asdict(self).items()}
        data["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return data


def check_backbone(backbone) -> None:
    """A backbone's name, or an ensemble's ("mobilenet_v2+efficientnet_lite2": each member a pretrained backbone, named
    once); else one ConfigError naming it (the member) and the backbones there are. A declared name is known without
    importing anything; any other is looked up in torchvision and timm."""
    if not isinstance(backbone, str) or not backbone:
        raise ConfigError("backbone", f"must be a backbone's name, not {backbone!r}")
    from zoolens.errors import ZoolensError
    from zoolens.models.available import backbone_source, registered_backbones

    pretrained = [name for name, spec in registered_backbones().items() if spec.pretrained]
    listed = f"the backbones: {', '.join(pretrained)} (`zoolens models`), or a torchvision or timm name"
    if ENSEMBLE_JOIN not in backbone:
        try:
            backbone_source(backbone)
        except ZoolensError:
            raise ConfigError("backbone", f"{backbone!r} is not a backbone; {listed}") from None
        return
    members = ensemble_members(backbone)
    for member in members:
        if not member:
            raise ConfigError("backbone", f"{backbone!r}: an empty member; join backbones with {ENSEMBLE_JOIN!r}, "
                                          f"e.g. {ENSEMBLE_JOIN.join(pretrained[:2])}")
        try:
            source = backbone_source(member)
        except ZoolensError:
            raise ConfigError("backbone", f"{member!r} in {backbone!r} is not a backbone; {listed}") from None
        if source == "zoolens":
            raise ConfigError("backbone", f"{member!r} in {backbone!r} has no pretrained weights: an ensemble's "
                                          f"members are pretrained networks; {listed}")
        if members.count(member) > 1:
            raise ConfigError("backbone", f"{member!r} is twice in {backbone!r}")


# `zoolens train --preset best`: the recipe measured best within 5x the default's cold training time, keeping its
# split (ratios, seed); docs/measurements.md, "--preset best".
PRESETS: dict[Preset, dict[str, object]] = {
    Preset.BEST: {"backbone": "mobilenet_v2+efficientnet_lite2"},
}
DEFAULTS = {name: getattr(TrainConfig, name) for name in ("backbone", "strategy", "image_size")}


def preset_recipe(preset) -> dict[str, object]:
    """The settings a preset's name stands for; one ConfigError naming `preset` when it is none."""
    if preset not in Preset.values():
        raise ConfigError("preset", f"{preset!r}: choose from {', '.join(Preset.values())}")
    return PRESETS[Preset(preset)]
