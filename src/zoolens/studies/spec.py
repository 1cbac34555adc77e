"""A study: several training runs that differ in backbone, strategy, optimizer, ... on one split.

Written as YAML (or one of the named presets in `presets/`):

    name: my-study
    split: {ratios: 70/10/20, seed: 0}
    defaults: {optimizer: adam}
    experiments:
      - {name: frozen, strategy: frozen}
      - {name: tuned, strategy: finetune, backbone: [resnet18, mobilenet_v2]}   # first one available
      - {name: frozen, backbone: every-pretrained}   # one run per registered backbone with weights here
    budgets:
      small: {finetune: {epochs: 2, image_size: 128}}     # per strategy, or `all:`
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path

from zoolens.choices import DEFAULT_BACKBONE, DEFAULT_RATIOS, Strategy
from zoolens.errors import ZoolensError
from zoolens.models.available import backbone_source, offline_weights_available, registered_backbones

PRESETS = Path(__file__).with_name("presets")
# The presets' former names, from the reports they reproduce; they still work.
PRESET_ALIASES = {"seed-002": "pretrained-vs-scratch", "seed-003": "frozen-vs-unfrozen",
                  "seed-004": "bottleneck-vs-scratch"}


def train_options() -> set[str]:
    """The TrainConfig fields an experiment may set (imported here, not above, so `preset_names` stays light)."""
    from zoolens.training.config import TrainConfig

    return {f.name for f in fields(TrainConfig)} - {"augmentation", "ratios", "seed"}


@dataclass
class Experiment:
    name: str
    options: dict  # TrainConfig fields


@dataclass
class StudySpec:
    name: str
    description: str
    ratios: str
    seed: int
    experiments: list[Experiment]
    budgets: tuple[str, ...] = ()

    def describe(self) -> str:
        """What the study compares, for people: its description, split and each experiment's settings."""
        lines = [self.name, "", *textwrap.wrap(self.description, 100), "",
                 f"split {self.ratios} (seed {self.seed}); budgets: {', '.join(self.budgets) or 'none'}", ""]
        width = max(len(e.name) for e in self.experiments)
        for experiment in self.experiments:
            settings = ", ".join(f"{key} {value}" for key, value in sorted(experiment.options.items()))
            lines.append(f"  {experiment.name:<{width}}  {settings}")
        return "\n".join(lines)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def _read_yaml(source: str) -> tuple[dict, str]:
    import yaml

    path = Path(source)
    preset = PRESET_ALIASES.get(source, source)
    if not path.exists() and preset in preset_names():
        path = PRESETS / f"{preset}.yaml"
    if not path.exists():
        raise ZoolensError(f"{source}: no such study file or preset (presets: {', '.join(preset_names())})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ZoolensError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("experiments"), list) or not data["experiments"]:
        raise ZoolensError(f"{path}: a study needs a list of experiments")
    return data, str(path)


def _choose_backbone(candidates, strategy: str, where: str) -> str:
    """A list of backbones means: the first whose pretrained weights are available here."""
    if isinstance(candidates, str):
        return candidates
    for name in candidates:
        if strategy == Strategy.SCRATCH or backbone_source(name) == "zoolens" or offline_weights_available(name):
            return name
    raise ZoolensError(f"{where}: none of {candidates} has pretrained weights available offline")


EVERY_PRETRAINED = "every-pretrained"


def _backbone_runs(name: str, candidates, strategy: str, where: str) -> list[tuple[str, str]]:
    """(experiment name, backbone) for one entry: `every-pretrained` is one run per registered backbone whose
    pretrained weights are available here, named after it."""
    if candidates == EVERY_PRETRAINED:
        names = [n for n, spec in registered_backbones().items() if spec.pretrained and offline_weights_available(n)]
        if not names:
            raise ZoolensError(f"{where} {name}: no registered backbone has pretrained weights available here")
        return [(f"{name}-{backbone}", backbone) for backbone in names]
    return [(name, _choose_backbone(candidates, strategy, f"{where} {name}"))]


def _check_options(options: dict, where: str) -> None:
    known = train_options()
    unknown = set(options) - known - {"name"}
    if unknown:
        raise ZoolensError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(known))}")


def load_study(source: str, budget: str | None = None) -> StudySpec:
    data, where = _read_yaml(source)
    defaults = data.get("defaults") or {}
    _check_options(defaults, f"{where} defaults")
    budgets = data.get("budgets") or {}
    if budget and budget not in budgets:
        raise ZoolensError(f"{where}: no budget {budget!r} (has: {', '.join(budgets) or 'none'})")
    limits = budgets.get(budget, {}) if budget else {}
    experiments, names = [], set()
    for number, entry in enumerate(data["experiments"], 1):
        if not isinstance(entry, dict):
            raise ZoolensError(f"{where}: experiment {number} must be a mapping of options")
        options = {**defaults, **entry}
        _check_options(options, f"{where} experiment {number}")
        strategy = options.get("strategy", Strategy.FROZEN.value)
        options.update(limits.get("all", {}), **limits.get(strategy, {}))
        entry_name = str(options.pop("name", f"run-{number}"))
        for name, backbone in _backbone_runs(entry_name, options.get("backbone", DEFAULT_BACKBONE), strategy, where):
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in names:
                raise ZoolensError(f"{where}: experiment name {name!r} must be unique, letters/digits/._- only")
            names.add(name)
            experiments.append(Experiment(name, {**options, "backbone": backbone}))
    split = data.get("split") or {}
    return StudySpec(
        name=str(data.get("name", Path(where).stem)),
        description=" ".join(str(data.get("description", "")).split()),
        ratios=str(split.get("ratios", DEFAULT_RATIOS)),
        seed=int(split.get("seed", 0)),
        experiments=experiments,
        budgets=tuple(budgets),
    )
