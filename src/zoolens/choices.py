"""The choices and defaults that the library, the commands and the apps share, and the constraints a setting is
checked against. Every closed set of words is a `Choice` (a StrEnum: each member is its word, so `"on" ==
OpenSetMode.ON`, JSON writes "on" and a model folder written before loads and compares); the command line's
`choices=` come from these, never from a second list. A settings class declares its constraints once, field ->
constraint, in the spirit of scikit-learn's `_parameter_constraints`, and one `check_parameters` walks them.

Importing nothing heavy (the standard library and zoolens.errors), so that the command line's help, usage errors and
`--version` read them without loading NumPy or PyTorch."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from zoolens.errors import ConfigError

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: what 3.11 defines
    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, spec: str) -> str:
            return str.__format__(str(self), spec)


class Choice(StrEnum):
    """A closed set of words a setting takes."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The words, in declared order, as plain strings (argparse's `choices=`, `x in ...` tests, messages)."""
        return tuple(member.value for member in cls)


# ---- the closed choices ---------------------------------------------------------------------------------------
class OpenSetMode(Choice):
    """The "none of these" / "not sure" checks: on, strict (turns more of the model's own photos away), off (never)."""

    ON = "on"
    STRICT = "strict"
    OFF = "off"


class Strategy(Choice):
    """frozen: cached features + dense head; finetune: then through the backbone; scratch: a new network; recipe:
    fine-tuning the timm / fastai way (training.config.Recipe: every step of it on)."""

    FROZEN = "frozen"
    FINETUNE = "finetune"
    SCRATCH = "scratch"
    RECIPE = "recipe"


class PhaseName(Choice):
    """The stages a strategy resolves to (training.config.Phase), as history.csv and checkpoints name them."""

    HEAD = "head"
    FINETUNE = "finetune"
    SCRATCH = "scratch"


class PhaseKind(Choice):
    """What a phase trains on: the dense head on cached frozen features, or photos through the backbone."""

    FEATURES = "features"
    PHOTOS = "photos"


class Optimizer(Choice):
    ADAM = "adam"
    SGD = "sgd"
    RMSPROP = "rmsprop"


class Balance(Choice):
    """weighted: each class's photos weigh in the loss as much as any other class's in all, so that a class with few
    photos is not given up for the large ones (what `zoolens data issues` suggests for an unbalanced dataset)."""

    NONE = "none"
    WEIGHTED = "weighted"


class GroupBy(Choice):
    """What a split keeps in one part (data.grouping): a camera-trap event's frames, a camera's, a site's, or
    nothing."""

    EVENT = "event"
    CAMERA = "camera"
    SITE = "site"
    NONE = "none"


class SplitPart(Choice):
    """The parts of a split, as a manifest's `split` column names them."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Explanation(Choice):
    """What `zoolens explain` draws: a method, or both."""

    GRADCAM = "gradcam"
    SALIENCY = "saliency"
    BOTH = "both"


class Engine(Choice):
    """What runs a batch prediction: this machine's processes, or Ray Data (zoolens[scale])."""

    LOCAL = "local"
    RAY = "ray"


class TuneMethod(Choice):
    """How `zoolens tune` picks each trial's settings: Optuna's guided search (TPE), at random, or a grid."""

    TPE = "tpe"
    RANDOM = "random"
    GRID = "grid"


class ExportFormat(Choice):
    ONNX = "onnx"


# The words as tuples, for `x in ...` (a StrEnum class itself refuses a plain string there before Python 3.12).
OPEN_SET_MODES = OpenSetMode.values()
GROUP_BY = GroupBy.values()
EXPLAIN_METHODS = (Explanation.GRADCAM.value, Explanation.SALIENCY.value)
EXPLAIN_CHOICES = Explanation.values()

# ---- defaults -----------------------------------------------------------------------------------------------------
DEFAULT_BACKBONE = "mobilenet_v2"
DEFAULT_RATIOS = "70/10/20"  # train/val/test
DEFAULT_OPEN_SET = OpenSetMode.ON
DEFAULT_OPEN_SET_SHARE = 0.02  # of the model's own validation photos the open-set check turns away, "not sure" included
TOP_K = 3  # the one default of every predictor's `top_k`: how many of the likeliest classes a Prediction carries
DEFAULT_MIN_CONFIDENCE = 0.6  # the apps' "not sure" line (the library and `zoolens predict` default to none)

# A backbone ensemble is one backbone name: its members' names joined ("mobilenet_v2+efficientnet_lite2").
ENSEMBLE_JOIN = "+"


class Preset(Choice):
    """`zoolens train --preset`: a fixed recipe chosen from the measurements (training.config.PRESETS)."""

    BEST = "best"


def ensemble_members(backbone: str) -> tuple[str, ...]:
    """The members of an ensemble's name, in order; a single backbone's name is its one member."""
    return tuple(backbone.split(ENSEMBLE_JOIN))


# ---- constraints --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneOf:
    """One of a Choice's words (or None, when optional)."""

    choice: type[Choice]
    optional: bool = False

    def check(self, field: str, value) -> None:
        if value is None and self.optional:
            return
        if value not in self.choice.values():
            raise ConfigError(field, f"{value!r}: choose from {', '.join(self.choice.values())}")


@dataclass(frozen=True)
class Interval:
    """A number of `kind` (numbers.Real, numbers.Integral) between `low` and `high` (None: unbounded), `closed` at
    "both" ends, the "left", the "right" or "neither"; None passes when optional. `words` replaces the range in the
    message ("0 (all blocks) or more"), which otherwise says it as "positive", "at least 1", "in [0, 1)" ..."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"
    optional: bool = False
    words: str | None = None

    def __post_init__(self):
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed: {self.closed!r}")

    def accepts(self, value) -> bool:
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        return ((self.low is None or (value >= self.low if left else value > self.low))
                and (self.high is None or (value <= self.high if right else value < self.high)))

    def describe(self) -> str:
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.words:
            return self.words
        if self.high is None:
            if self.low == 0 and not left:
                return "positive"
            return f"at least {self.low}" if left else f"above {self.low}"
        if self.low is None:
            return f"at most {self.high}" if right else f"below {self.high}"
        if not left and not right:
            return f"above {self.low} and below {self.high}"
        return f"in {'[' if left else '('}{self.low}, {self.high}{']' if right else ')'}"

    def check(self, field: str, value) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, self.kind):
            kind = "a whole number" if self.kind is numbers.Integral else "a number"
            raise ConfigError(field, f"must be {kind}, not {value!r}")
        if not self.accepts(value):  # NaN included: every comparison with it is false
            raise ConfigError(field, f"must be {self.describe()}, not {value}")


@dataclass(frozen=True)
class Satisfies:
    """Whatever `parse` accepts: it raises the ConfigError naming the field itself (`data.split.parse_ratios`)."""

    parse: Callable[[object], object]
    optional: bool = False

    def check(self, field: str, value) -> None:
        if value is None and self.optional:
            return
        self.parse(value)


Constraint = OneOf | Interval | Satisfies
AT_LEAST_1 = Interval(numbers.Integral, 1, None, closed="left")


def check_parameters(settings, constraints: Mapping[str, Constraint]) -> None:
    """Every declared constraint of `settings` (a dataclass instance), in declared order: the first setting that
    breaks one is refused with one ConfigError naming it."""
    for field, constraint in constraints.items():
        constraint.check(field, getattr(settings, field))


def as_members(settings, constraints: Mapping[str, Constraint]) -> dict[str, Choice]:
    """The settings of closed choices whose words are right, as their members ("finetune" -> Strategy.FINETUNE):
    for a dataclass's __post_init__, so that its fields hold what they say. A wrong word is left for
    `check_parameters` to name."""
    members = {}
    for field, constraint in constraints.items():
        value = getattr(settings, field)
        if isinstance(constraint, OneOf) and isinstance(value, str) and value in constraint.choice.values():
            members[field] = constraint.choice(value)
    return members


def plain(value):
    """A Choice as its word (a plain str), anything else as it is: what a file records."""
    return value.value if isinstance(value, Enum) else value
