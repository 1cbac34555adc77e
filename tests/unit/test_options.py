"""Options as types (issue 33, item 3): every closed choice is a `Choice` (a StrEnum) in zoolens.choices, the command
line's choices come from it, the settings' constraints are declared once per settings class and one walk checks them,
each refusal is one line naming the field, and what a file records is the plain word.
The tests that train or start processes: tests/integration/test_options_studies.py."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from zoolens.choices import (
    DEFAULT_BACKBONE,
    DEFAULT_OPEN_SET,
    DEFAULT_RATIOS,
    Balance,
    Choice,
    Engine,
    Explanation,
    ExportFormat,
    GroupBy,
    Interval,
    OneOf,
    OpenSetMode,
    Optimizer,
    PhaseKind,
    PhaseName,
    Satisfies,
    SplitPart,
    Strategy,
    TuneMethod,
)
from zoolens.cli.program import build_parser, every_parser, main
from zoolens.errors import ConfigError
from zoolens.inference.batch.job import BatchOptions
from zoolens.training.config import TrainConfig

CLI = Path(__file__).resolve().parents[2] / "src" / "zoolens" / "cli"

# The Choice behind each command-line option with choices, by (command words, option's field); a (command, None) key
# stands for every option of that field.
OPTION_CHOICES = {
    ("*", "open_set"): OpenSetMode,
    ("*", "strategy"): Strategy,
    ("*", "optimizer"): Optimizer,
    ("*", "balance"): Balance,
    ("*", "group_by"): GroupBy,
    ("*", "engine"): Engine,
    ("*", "format"): ExportFormat,
    ("explain", "method"): Explanation,
    ("tune", "method"): TuneMethod,
}


def choice_of(words: str, dest: str) -> type[Choice]:
    found = OPTION_CHOICES.get((words, dest)) or OPTION_CHOICES.get(("*", dest))
    assert found is not None, f"zoolens {words} --{dest}: choices from no Choice; add one to zoolens/choices.py"
    return found


def option_actions():
    for words, command in every_parser(build_parser()):
        for action in command._actions:
            if action.option_strings and action.choices is not None:
                yield words, action


def test_every_command_line_choice_list_is_its_enums_members_in_order():
    seen = set()
    for words, action in option_actions():
        choice = choice_of(words, action.dest)
        assert tuple(action.choices) == choice.values(), f"zoolens {words} {action.option_strings[0]}"
        if action.default is not None:
            assert action.default in choice.values()
        seen.add(choice)
    assert seen == set(OPTION_CHOICES.values())  # every Choice an option takes is still taken by one


def literal_choice_lists(path: Path) -> list[str]:
    """`choices=[...]` / `("a", "b")` / {...} written out in a module, rather than taken from a Choice."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "choices" and isinstance(node.value, (ast.List, ast.Tuple,
                                                                                               ast.Set)):
            found.append(f"{path.name}:{node.value.lineno}")
    return found


def test_no_command_line_module_writes_its_choices_out():
    """So that a member added to a Choice is an option's choice at once (the test above checks the lists agree)."""
    assert [hit for path in sorted(CLI.glob("*.py")) for hit in literal_choice_lists(path)] == []


@pytest.mark.parametrize("command", ["train", "kfold", "tune"])
def test_the_training_options_defaults_are_train_configs(command, tmp_path):
    from zoolens.cli.common import training_config

    args = build_parser().parse_args([command, str(tmp_path / "photos"), "--out", str(tmp_path / "out")])
    args.given = set()
    assert training_config(args).to_dict() == TrainConfig().to_dict()


def test_predicts_batch_defaults_are_batch_options(tmp_path):
    args = build_parser().parse_args(["predict", "model", "photos", "--out", str(tmp_path / "r.parquet")])
    defaults = BatchOptions()
    assert (args.open_set, args.engine, args.top_k) == (defaults.open_set, defaults.engine, defaults.top_k)


def test_one_constant_for_the_default_split_and_backbone():
    config = TrainConfig()
    assert (config.ratios, config.backbone) == (DEFAULT_RATIOS, DEFAULT_BACKBONE) == ("70/10/20", "mobilenet_v2")
    assert DEFAULT_OPEN_SET == "on" and BatchOptions().open_set is OpenSetMode.ON


# ---- constraints: one line naming the field ---------------------------------------------------------------------
# The messages as they were before the constraints were declared (tests and users rely on them), and a few new ones.
TRAIN_REFUSALS = [
    ({"strategy": "fast"}, "strategy: 'fast': choose from frozen, finetune, scratch, recipe"),
    ({"balance": "even"}, "balance: 'even': choose from none, weighted"),
    ({"optimizer": "adagrad"}, "optimizer: 'adagrad': choose from adam, sgd, rmsprop"),
    ({"lr": 0}, "lr: must be positive, not 0"),
    ({"lr": -1e-3}, "lr: must be positive, not -0.001"),
    ({"lr": math.nan}, "lr: must be positive, not nan"),
    ({"lr": "1e-4"}, "lr: must be a number, not '1e-4'"),  # YAML reads 1e-4 as text: a study's typo
    ({"epochs": 0}, "epochs: must be positive, not 0"),
    ({"epochs": 2.5}, "epochs: must be a whole number, not 2.5"),
    ({"image_size": -3}, "image_size: must be positive, not -3"),
    ({"ratios": "abc"}, "ratios: 'abc': write them like 70/10/20 or 80/20"),
    ({"group_by": "day"}, "group_by: 'day': choose from event, camera, site, none"),
    ({"sequence_gap": -1.0}, "sequence_gap: must be 0 seconds or more, not -1.0"),
    ({"unfreeze": -1}, "unfreeze: must be 0 (all blocks) or more, not -1"),
    ({"unfreeze": 2}, "unfreeze: chooses which blocks fine-tuning trains: it needs `strategy` finetune, not frozen"),
    ({"num_nodes": 0}, "num_nodes: must be at least 1, not 0"),
    ({"batch_size": 0}, "batch_size: must be at least 1, not 0"),
    ({"dropout": 1.0}, "dropout: must be in [0, 1), not 1.0"),
    ({"open_set_share": 0.5}, "open_set_share: must be above 0 and below 0.5, not 0.5"),
    ({"open_set_share": 0}, "open_set_share: must be above 0 and below 0.5, not 0"),
    ({"label_smoothing": 1.5}, "label_smoothing: must be in [0, 1], not 1.5"),
    ({"weight_decay": -1e-4}, "weight_decay: must be at least 0, not -0.0001"),
    ({"patience": -1}, "patience: must be at least 0, not -1"),
    ({"head_epochs": 0}, "head_epochs: must be at least 1, not 0"),
    ({"seed": -1}, "seed: must be at least 0, not -1"),
    ({"workers": -2}, "workers: must be at least 0, not -2"),
]


@pytest.mark.parametrize("setting, message", TRAIN_REFUSALS, ids=lambda x: str(x)[:40])
def test_a_wrong_training_setting_is_one_line_naming_it(setting, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**setting).validate()
    assert str(caught.value) == message and caught.value.field == next(iter(setting)) and "\n" not in message


def outside(constraint):
    """A value just outside a declared constraint, and the words its message has (None: a parser's own words)."""
    if isinstance(constraint, OneOf):
        return "no-such-choice", f"'no-such-choice': choose from {', '.join(constraint.choice.values())}"
    if isinstance(constraint, Satisfies):
        return "no/such/thing/at/all", None
    left = constraint.closed in ("both", "left")
    value = constraint.low - 1 if left else constraint.low
    return value, f"must be {constraint.describe()}, not {value}"


@pytest.mark.parametrize("settings_class", [TrainConfig, BatchOptions])
def test_every_declared_constraint_is_checked_and_named(settings_class):
    """Each field of the table is a field of the class, and a value just outside it is refused naming the field."""
    names = {f.name for f in fields(settings_class)}
    for field, constraint in settings_class.PARAMETER_CONSTRAINTS.items():
        assert field in names
        value, words = outside(constraint)
        with pytest.raises(ConfigError) as caught:
            settings_class(**{field: value}).validate()
        assert caught.value.field == field
        if words is not None:
            assert str(caught.value) == f"{field}: {words}"


def test_the_defaults_meet_their_constraints():
    TrainConfig().validate()
    BatchOptions().validate()


@pytest.mark.parametrize("options, message", [
    ({"open_set": "maybe"}, "open_set: 'maybe': choose from on, strict, off"),
    ({"engine": "dask"}, "engine: 'dask': choose from local, ray"),
    ({"top_k": 0}, "top_k: must be at least 1, not 0"),
    ({"chunk_size": 0}, "chunk_size: must be at least 1, not 0"),
    ({"limit": -1}, "limit: must be at least 0, not -1"),
])
def test_a_wrong_batch_option_is_one_line_naming_it(options, message):
    with pytest.raises(ConfigError) as caught:
        BatchOptions(**options).validate()
    assert str(caught.value) == message


def test_interval_words():
    import numbers

    assert Interval(numbers.Real, 0, None, closed="neither").describe() == "positive"
    assert Interval(numbers.Real, 2, None, closed="neither").describe() == "above 2"
    assert Interval(numbers.Real, None, 5, closed="both").describe() == "at most 5"
    assert Interval(numbers.Real, 0, 1, closed="right").describe() == "in (0, 1]"
    with pytest.raises(ConfigError, match=r"^x: must be a number, not True$"):
        Interval(numbers.Real, 0, 1).check("x", True)
    with pytest.raises(ValueError):
        Interval(numbers.Real, 0, 1, closed="open")


def test_a_wrong_setting_on_the_command_line_is_its_option(tmp_path, capsys):
    code = main(["train", str(tmp_path / "photos"), "--out", str(tmp_path / "m"), "--lr", "0"])
    assert code == 2 and capsys.readouterr().err == "zoolens: error: --lr must be positive, not 0.0\n"
    with pytest.raises(SystemExit) as caught:
        main(["train", str(tmp_path / "photos"), "--out", str(tmp_path / "m"), "--strategy", "fast"])
    assert caught.value.code == 2
    assert "invalid choice: 'fast' (choose from 'frozen', 'finetune', 'scratch', 'recipe')" in capsys.readouterr().err


# ---- recorded as plain words --------------------------------------------------------------------------------------
CHOICE_FIELDS = [name for name, c in TrainConfig.PARAMETER_CONSTRAINTS.items() if isinstance(c, OneOf)]


def test_a_config_holds_members_and_records_plain_words_that_load_back():
    config = TrainConfig(strategy="finetune", optimizer="sgd", balance="weighted", group_by="camera", unfreeze=2)
    assert (config.strategy, config.optimizer, config.balance, config.group_by) == (
        Strategy.FINETUNE, Optimizer.SGD, Balance.WEIGHTED, GroupBy.CAMERA)
    assert config.strategy is Strategy.FINETUNE
    recorded = json.loads(json.dumps(config.to_dict()))  # what zoolens.json and history hold
    assert all(type(config.to_dict()[name]) is str for name in CHOICE_FIELDS)
    assert {name: recorded[name] for name in CHOICE_FIELDS} == {
        "strategy": "finetune", "balance": "weighted", "optimizer": "sgd", "group_by": "camera"}
    recorded.pop("augmentation")
    again = TrainConfig(**recorded)
    assert again == config and again.to_dict() == config.to_dict() and again.strategy is Strategy.FINETUNE
    again.validate()
    phases = [phase.to_dict() for phase in config.phases()]
    assert [(p["name"], p["on"]) for p in phases] == [("head", "features"), ("finetune", "photos")]
    assert all(type(p["name"]) is str and type(p["on"]) is str for p in phases)


def test_words_recorded_before_compare_and_look_up_as_members():
    """A model folder written before holds plain words: they equal the members, hash alike, and find the same
    entries (the learning rates by optimizer, the open-set thresholds by mode)."""
    from zoolens.training.config import HEAD_LR

    assert HEAD_LR["sgd"] == HEAD_LR[Optimizer.SGD] and {"on": 1}[OpenSetMode.ON] == 1
    assert f"{Strategy.SCRATCH}" == str(Strategy.SCRATCH) == "scratch"
    assert PhaseKind("photos") is PhaseKind.PHOTOS and PhaseName.HEAD == "head" and SplitPart.VAL == "val"
    old = {"training": {"strategy": "frozen", "phases": [{"name": "head", "on": "features"}]}}
    assert old["training"]["strategy"] == TrainConfig().strategy
    assert old["training"]["phases"][0]["on"] == TrainConfig().phases()[0].on


def test_the_open_set_modes_work_as_words_and_as_members(tmp_path):
    from zoolens.models.open_set import OpenSetCheck, OpenSetScores, Thresholds

    bank = np.eye(3, dtype=np.float32)
    limits = {"on": Thresholds(0.5, None, 0.0), "strict": Thresholds(0.1, None, 0.0)}
    check = OpenSetCheck(bank, np.arange(3), 1, limits)
    loaded = OpenSetCheck.load(check.save(tmp_path / "open_set.safetensors"))
    scores = OpenSetScores(np.array([0.0, 0.3, 0.9], np.float32), None, None, None)
    for model in (check, loaded):
        for mode in OpenSetMode:
            assert model.reasons(scores, mode) == model.reasons(scores, mode.value)
        assert model.reasons(scores, OpenSetMode.OFF) == [None] * 3
        assert [r is None for r in model.reasons(scores, "strict")] == [True, False, False]


def test_choices_load_without_numpy():
    code = "import sys, zoolens.choices; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
