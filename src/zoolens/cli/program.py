"""The `zoolens` program: the parser, `main()` and `run()`. Errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import re
import sys
import warnings
from pathlib import Path

from zoolens import __version__
from zoolens.choices import (
    DEFAULT_BACKBONE,
    DEFAULT_OPEN_SET,
    DEFAULT_RATIOS,
    OPEN_SET_MODES,
    TOP_K,
    Engine,
    ExportFormat,
)
from zoolens.cli.commands import (
    add_preset_option,
    cmd_data_inspect,
    cmd_data_issues,
    cmd_data_split,
    cmd_evaluate,
    cmd_export,
    cmd_models,
    cmd_predict,
    cmd_train,
)
from zoolens.cli.common import (
    DATA_HELP,
    MODEL_HELP,
    add_corrections_option,
    add_grouping_options,
    add_training_options,
    as_flag,
)
from zoolens.cli.examples import add_examples
from zoolens.errors import ConfigError, ZoolensError
from zoolens.terminal import printable, printable_output

# Command families in modules of their own beside this one; each has `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("zoolens.cli.apps", "zoolens.cli.explain", "zoolens.cli.studies",
                                     "zoolens.cli.camera_traps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoolens",
        description="Turn a folder of labelled animal photos into an accurate image classifier.",
    )
    parser.add_argument("--version", action="version", version=f"zoolens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="inspect or split a dataset folder").add_subparsers(
        dest="data_command", required=True, metavar="ACTION")
    inspect = data.add_parser("inspect", help="classes, counts, image sizes and modes, duplicates, unusable files")
    inspect.add_argument("data", metavar="DATA", help=DATA_HELP)
    inspect.add_argument("--json", action="store_true", help="print JSON for machines")
    inspect.add_argument("--out", help="also write summary.json and class_balance.png to this folder")
    inspect.set_defaults(run=cmd_data_inspect, unfinished_outputs=ONE_SHOT_OUTPUTS)
    split = data.add_parser("split", help="write a stratified train/val/test manifest (CSV); no file is moved")
    split.add_argument("data", metavar="DATA", help=DATA_HELP)
    split.add_argument("--ratios", default=DEFAULT_RATIOS, help="train/val/test, or train/test")
    split.add_argument("--seed", type=int, default=0, help="which photos go where: the same seed, the same split")
    split.add_argument("--out", metavar="MANIFEST.csv", help="manifest file (default: ./<folder>-split.csv)")
    add_grouping_options(split)
    add_corrections_option(split)
    split.set_defaults(run=cmd_data_split, unfinished_outputs=ONE_SHOT_OUTPUTS)
    issues = data.add_parser("issues", help="likely mislabelled photos, near-duplicates (across the split too), "
                                            "outliers, class balance")
    issues.add_argument("data", metavar="DATA", help=DATA_HELP)
    issues.add_argument("--out", metavar="FOLDER", required=True,
                        help="folder for label_issues.csv, near_duplicates.csv, outliers.csv and contact sheets")
    issues.add_argument("--backbone", default=DEFAULT_BACKBONE, help="the pretrained network whose features judge")
    issues.add_argument("--split", metavar="MANIFEST.csv", help="the split to check for leaks (default: the one "
                                                                "`zoolens train` makes with --ratios and --seed)")
    issues.add_argument("--ratios", default=DEFAULT_RATIOS, help="train/val/test split")
    issues.add_argument("--seed", type=int, default=0, help="which photos go where")
    add_grouping_options(issues)
    add_corrections_option(issues)
    issues.add_argument("--quiet", action="store_true", help="no progress output")
    issues.set_defaults(run=cmd_data_issues, unfinished_outputs=ONE_SHOT_OUTPUTS)

    train = commands.add_parser("train", help="train a classifier by transfer learning")
    train.add_argument("data", metavar="DATA", help=DATA_HELP)
    train.add_argument("--out", required=True, metavar="MODEL",
                       help="model folder to write, outside DATA; a zoolens model there is replaced (only its own "
                            "files: others in the folder are kept); one run at a time per folder")
    add_training_options(train)
    add_preset_option(train)
    add_grouping_options(train)
    train.add_argument("--split", metavar="MANIFEST.csv", help="use this split manifest (from `zoolens data split`)")
    add_corrections_option(train)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--resume", action="store_true",
                       help="go on from MODEL.partial/, the per-epoch checkpoint an interrupted run left")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="metrics, report and confusion matrix on unseen photos")
    evaluate.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    evaluate.add_argument("data", metavar="DATA", help="photos the model never saw, in class folders of its classes")
    evaluate.add_argument("--out", metavar="FOLDER",
                          help="folder for the figures and metrics (default MODEL/evaluation)")
    evaluate.add_argument("--json", action="store_true", help="print JSON for machines")
    evaluate.add_argument("--unknown", action="append", metavar="FOLDER",
                          help="photos of none of the model's classes (people, objects, other species; any layout): "
                               "how many it accepts as a class, how many of its own it turns away, AUROC (repeatable)")
    evaluate.add_argument("--open-set", default=DEFAULT_OPEN_SET.value, choices=OPEN_SET_MODES,
                          help="the open-set mode to measure")
    evaluate.set_defaults(run=cmd_evaluate, unfinished_outputs=ONE_SHOT_OUTPUTS)

    predict = commands.add_parser("predict", help="label, confidence and top-k for photos")
    predict.add_argument("model_and_paths", nargs="+", metavar="MODEL PHOTO",
                         help="a model folder, then photos or folders of photos (with --imagenet: photos only)")
    predict.add_argument("--imagenet", action="store_true", help="no model: the pretrained ImageNet classes")
    predict.add_argument("--groups", action="store_true",
                         help="with --imagenet: animal group (dog, snake, bird, ...) summed over its ImageNet classes")
    predict.add_argument("--backbone", default=DEFAULT_BACKBONE, help="network for --imagenet")
    predict.add_argument("--top-k", type=int, default=TOP_K, help="how many of the likeliest classes to show")
    predict.add_argument("--min-confidence", type=float,
                         help="answer 'not sure' below this probability (on top of the model's calibrated threshold)")
    predict.add_argument("--open-set", default=DEFAULT_OPEN_SET.value, choices=OPEN_SET_MODES,
                         help="'none of these' for people, objects, empty frames and other species: on (default, "
                              "turns away 2%% of the model's own validation photos), strict (5%%) or off")
    predict.add_argument("--csv", metavar="FILE.csv", help="also write one row per photo to this CSV")
    batch = predict.add_argument_group("a whole folder tree, resumable (zoolens predict MODEL FOLDER --out ...)")
    batch.add_argument("--out", metavar="RESULTS.parquet",
                       help="write results as a Parquet folder of parts; run again to go on where it stopped")
    batch.add_argument("--sort-into", metavar="FOLDER",
                       help="link each photo into FOLDER/<class>/, 'not sure/' or 'none of these/'")
    batch.add_argument("--copy", action="store_true", help="with --sort-into: copy instead of linking")
    batch.add_argument("--summary", metavar="CSV", help="per-folder counts (default: RESULTS-summary.csv beside it)")
    batch.add_argument("--workers", type=int, help="photo-decoding processes (default: CPU count, at most 4)")
    batch.add_argument("--limit", type=int, help="stop after this many new photos (the next run goes on)")
    batch.add_argument("--engine", default=Engine.LOCAL.value, choices=Engine.values(),
                       help="local (default) or ray: the same job on Ray Data (pip install 'zoolens[scale]')")
    batch.add_argument("--ray-address", help="with --engine ray: a running cluster, e.g. ray://host:10001 "
                                             "(default: start a local one)")
    batch.add_argument("--concurrency", type=int, help="with --engine ray: model replicas (default: 2)")
    batch.add_argument("--camera-traps", action="store_true",
                       help="judge each frame blank, animal, person or vehicle (what zoolens results needs): the "
                            "camera-trap animal detector, about 9x slower than without")
    predict.set_defaults(run=cmd_predict, unfinished_outputs=("csv",))  # --out results go on when run again

    export = commands.add_parser("export", help="the whole classifier as one ONNX file, for deployment")
    export.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    export.add_argument("--format", default=ExportFormat.ONNX.value, choices=ExportFormat.values(), help="file format")
    export.add_argument("--out", metavar="FILE.onnx",
                        help="file to write (default MODEL/model.onnx); a model on an ensemble of backbones "
                             "(--backbone a+b) is one file too: normalised images in (the first member's "
                             "normalisation), each member's features side by side inside, probabilities out")
    export.add_argument("--check", metavar="DATA", help="compare with PyTorch on these photos (default: its test part)")
    export.set_defaults(run=cmd_export, unfinished_outputs=ONE_SHOT_OUTPUTS)

    models = commands.add_parser("models", help="backbones and whether their weights are available offline")
    models.set_defaults(run=cmd_models)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    for words, command in every_parser(parser):
        add_examples(command, words)
    return parser


# Options naming what a command writes in one go (no resuming): when the command fails, what it had begun there is
# removed, if it was not there before (a full disk leaves no half-written report or evaluation behind).
ONE_SHOT_OUTPUTS = ("out", "csv")


def outputs_it_would_create(args) -> list[Path]:
    names = getattr(args, "unfinished_outputs", ())
    return [Path(value) for name in names if (value := getattr(args, name, None)) and not os.path.lexists(value)]


def remove_unfinished(created: list[Path]) -> None:
    import shutil

    for path in created:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            try:
                path.unlink()
            except OSError:
                pass


def as_option(error: ZoolensError, options: set[str] = frozenset()) -> str:
    """A library error as the command line says it: a setting's field name becomes its option (`lr` -> `--lr`)."""
    if isinstance(error, ConfigError):
        return f"{as_flag(error.field)} {options_named(error.problem, options)}"
    return options_named(str(error), options)


_NAMED_SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")


def options_named(text: str, options: set[str]) -> str:
    """The settings a library message names (errors.setting: `sort_into`) as this command's options (--sort-into)."""
    return _NAMED_SETTING.sub(lambda m: as_flag(m[1]) if m[1] in options else m[0], text)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands by name (`data` has `inspect` and `split`); empty for a command itself."""
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return dict(action.choices) if action is not None else {}


def command_parser(parser: argparse.ArgumentParser, run) -> argparse.ArgumentParser | None:
    """The parser of the command that `run` runs (`zoolens data split`'s for cmd_data_split)."""
    if parser.get_default("run") is run:
        return parser
    return next((found for command in subcommands(parser).values() if (found := command_parser(command, run))), None)


def option_fields(command: argparse.ArgumentParser) -> set[str]:
    """The field names of a command's options (`sort_into` for its --sort-into)."""
    return {action.dest for action in command._actions if action.option_strings}


def options_given(command: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The field names of the options written on the command line, defaults aside (abbreviations are off, so each
    is written in full; `--` ends the options)."""
    fields = {flag: action.dest for action in command._actions for flag in action.option_strings}
    words = argv[: argv.index("--")] if "--" in argv else argv
    return {fields[flag] for word in words if (flag := word.split("=", 1)[0]) in fields}


def every_parser(parser: argparse.ArgumentParser, path: str = ""):
    """(command words, parser) for the program and each command under it: "", "data", "data inspect", ..."""
    yield path, parser
    for name, command in subcommands(parser).items():
        yield from every_parser(command, f"{path} {name}".strip())


def mistyped_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """One line for a command word that is not one (`zoolens trian`): the closest commands, instead of argparse's
    list of every choice; None when the command words are right."""
    import difflib

    prefix = parser.prog
    for word in argv:
        commands = subcommands(parser)
        if word.startswith("-") or not commands:
            return None  # an option before the command (argparse says what is wrong with it), or no more commands
        if word not in commands:
            close = difflib.get_close_matches(word, list(commands), n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else (
                f"the commands are {', '.join(commands)}")
            return f"{prefix}: error: {word!r} is not a command; {hint} (`{prefix} -h` lists them)"
        parser, prefix = commands[word], f"{prefix} {word}"
    return None


def unknown_options(command: argparse.ArgumentParser, unknown: list[str]) -> str:
    """argparse's "unrecognized arguments", with the closest options of the command (`--min-conf`: did you mean
    --min-confidence?)."""
    import difflib

    flags = [flag for action in command._actions for flag in action.option_strings if flag.startswith("--")]
    hints = []
    for word in (w.split("=", 1)[0] for w in unknown if w.startswith("--")):
        close = [f for f in flags if f.startswith(word)] or difflib.get_close_matches(word, flags, n=2, cutoff=0.6)
        if close:
            hints.append(f"{word}: did you mean {' or '.join(close[:2])}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if (typo := mistyped_command(parser, argv)) is not None:
        print(printable(typo), file=sys.stderr)
        return 2
    args, unknown = parser.parse_known_args(argv)
    command = command_parser(parser, args.run)
    if unknown:  # said with the usage of the command it was given to, not the program's
        command.error(unknown_options(command, unknown))
    options = option_fields(command)
    args.given = options_given(command, argv)
    if not os.environ.get("ZOOLENS_DEBUG"):
        warnings.filterwarnings("ignore")
    created = outputs_it_would_create(args)
    try:
        with printable_output(rewrite=lambda line: options_named(line, options)):
            return args.run(args)
    except ZoolensError as error:
        remove_unfinished(created)
        print(f"zoolens: error: {printable(as_option(error, options))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoolens: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a full disk, a read-only folder, /dev/full: what the system said, on one line
        remove_unfinished(created)
        where = error.filename or next(iter(created), None) or getattr(args, "out", None)
        where = f"{where}: " if where else ""
        print(f"zoolens: error: {printable(where)}cannot be written or read ({error.strerror or error})",
              file=sys.stderr)
        return 1


def run() -> None:
    """The `zoolens` program: `main()`, then exit."""
    code = main()
    # Python's last garbage collections at exit walk every object of PyTorch, torchvision, scikit-learn and
    # the rest, 1.5 s of a warm `zoolens train` here; frozen objects are skipped (and still freed). Nothing
    # relies on them: every file is written and closed by then.
    gc.freeze()
    sys.exit(code)
