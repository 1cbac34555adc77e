"""What a training run is asked to do (`TrainConfig`) and the phases it resolves to (`Phase`): plain data, checked
without loading PyTorch, so that a wrong setting is refused at once and the command line's help stays fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from zoolens.choices import DEFAULT_BACKBONE, GROUP_BY
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S
from zoolens.data.split import parse_ratios
from zoolens.data.transforms import Augmentation
from zoolens.errors import ConfigError, setting
from zoolens.models.open_set import DEFAULT_SHARE

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass(frozen=True)
class Phase:
    """One stage of a training strategy, resolved before training starts (and recorded in zoolens.json)."""

    name: str  # "head", "finetune" or "scratch"
    on: str  # "features": the dense head on cached frozen features; "photos": through the backbone
    lr: float
    epochs: int  # at most: early stopping on the validation loss ends it sooner
    patience: int
    unfreeze: int | None = None  # on photos: the backbone's last blocks that train (0: all of them)
    learns_batchnorm: bool = False  # on photos: batch-norm statistics learnt (a new network) or kept (pretrained)
    must_beat_start: bool = False  # keep the network it started from unless an epoch beats its validation loss


STRATEGIES = ("frozen", "finetune", "scratch")
# "weighted": each class's photos weigh in the loss as much as any other class's in all, so that a class with few
# photos is not given up for the large ones (what `zoolens data issues` suggests for an unbalanced dataset).
BALANCES = ("none", "weighted")
# Whole-network learning rates: adaptive optimizers' first steps move every weight by about lr, so they
# need a small one (measured: 1e-4 made validation loss worse than the warm head, 3e-5 improved on it).
HEAD_LR = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2}
FINETUNE_LR = {"adam": 3e-5, "rmsprop": 3e-5, "sgd": 1e-4}  # SGD at 1e-3 collapsed on CIFAR animals (measured)
SCRATCH_LR = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2}
# Where and how fast a run goes, not what it learns: left out when comparing runs' settings.
WHERE_IT_RUNS = ("accelerator", "devices", "num_nodes", "workers")


@dataclass
class TrainConfig:
    backbone: str = DEFAULT_BACKBONE
    strategy: str = "frozen"
    optimizer: str = "adam"
    lr: float | None = None  # default: 1e-3 for the head, FINETUNE_LR when fine-tuning
    epochs: int | None = None  # default: 60 for the head (early stopping ends it sooner), 5 fine-tuning
    batch_size: int = 32
    patience: int = 8
    weight_decay: float = 1e-4
    dropout: float = 0.5  # measured best of 0.2/0.5 on animals3 (98.7 % vs 98.3 %) with Imagewoof within noise
    label_smoothing: float = 0.0
    ratios: str = "70/10/20"
    seed: int = 0
    # What the split keeps in one part (data.grouping): None, the data's own way (camera-trap labels by event, class
    # folders photo by photo), or event / camera / site / none
    group_by: str | None = None
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
    balance: str = "none"

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"{self.strategy!r}: choose from {', '.join(STRATEGIES)}")
        if self.balance not in BALANCES:
            raise ConfigError("balance", f"{self.balance!r}: choose from {', '.join(BALANCES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"{self.optimizer!r}: choose from {', '.join(OPTIMIZERS)}")
        for name in ("lr", "epochs", "image_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be positive, not {value}")
        parse_ratios(self.ratios)
        if self.group_by is not None and self.group_by not in GROUP_BY:
            raise ConfigError("group_by", f"{self.group_by!r}: choose from {', '.join(GROUP_BY)}")
        if not self.sequence_gap >= 0:
            raise ConfigError("sequence_gap", f"must be 0 seconds or more, not {self.sequence_gap}")
        if self.unfreeze < 0:
            raise ConfigError("unfreeze", f"must be 0 (all blocks) or more, not {self.unfreeze}")
        if self.unfreeze and self.strategy != "finetune":
            raise ConfigError("unfreeze", f"chooses which blocks fine-tuning trains: it needs {setting('strategy')} "
                                          f"finetune, not {self.strategy}")
        if self.num_nodes < 1:
            raise ConfigError("num_nodes", f"must be at least 1, not {self.num_nodes}")
        if self.batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, not {self.batch_size}")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout", f"must be in [0, 1), not {self.dropout}")
        if not 0 < self.open_set_share < 0.5:
            raise ConfigError("open_set_share", f"must be above 0 and below 0.5, not {self.open_set_share}")

    def phases(self) -> list[Phase]:
        """The strategy as data: what trains in turn, on what, at which learning rate and for how many epochs.
        `lr` and `epochs` apply to the strategy's last phase; the others keep their defaults."""
        frozen = self.strategy == "frozen"
        head = Phase("head", "features", self.lr if frozen and self.lr else HEAD_LR[self.optimizer],
                     self.epochs if frozen and self.epochs else self.head_epochs, self.patience)
        if self.strategy == "frozen":
            return [head]
        if self.strategy == "finetune":
            return [head, Phase("finetune", "photos", self.lr or FINETUNE_LR[self.optimizer], self.epochs or 5,
                                self.patience, unfreeze=self.unfreeze, must_beat_start=True)]
        return [Phase("scratch", "photos", self.lr or SCRATCH_LR[self.optimizer], self.epochs or 10, self.patience,
                      unfreeze=0, learns_batchnorm=True)]

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from pretrained weights (and its frozen features are cached)."""
        return self.phases()[0].on == "features"

    @property
    def trains_backbone(self) -> bool:
        """Whether the backbone's weights change, so that its features are no longer the pretrained ones."""
        return any(phase.on == "photos" for phase in self.phases())

    def on_one_device(self) -> TrainConfig:
        """For studies, k-fold and tuning, which train one model after another in this one process."""
        if str(self.devices) not in ("auto", "1") or self.num_nodes != 1:
            raise ConfigError("devices", "must be 1 (or auto) for studies, k-fold and tuning, which train one model at "
                                         "a time; several devices are for zoolens train")
        return replace(self, devices=1)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return data


