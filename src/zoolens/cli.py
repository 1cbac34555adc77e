"""The `zoolens` command: a thin layer over the Python API. Errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from zoolens import __version__
from zoolens.errors import ZoolensError
from zoolens.terminal import printable, printable_output


def _expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders walked for image files (sorted)."""
    from zoolens.data.folders import walk_files
    from zoolens.data.images import is_image_name

    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths.extend(p for p in walk_files(path) if is_image_name(p))
        else:
            paths.append(path)
    if not paths:
        raise ZoolensError(f"no image files in {', '.join(items)}")
    return paths


# ---- data -----------------------------------------------------------------------------------------
def cmd_data_inspect(args) -> int:
    from zoolens.data.inspect import format_summary, inspect_folder, plot_class_balance
    from zoolens.files import check_apart, output_folder

    if args.out:
        check_apart(args.data, args.out)
    summary = inspect_folder(args.data, progress=not args.json)
    if args.out:
        out = output_folder(args.out)
        (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
        plot_class_balance(summary, out / "class_balance.png")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(format_summary(summary))
        if args.out:
            print(f"wrote {Path(args.out) / 'summary.json'} and {Path(args.out) / 'class_balance.png'}")
    return 0


def cmd_data_split(args) -> int:
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_folder, write_manifest

    folder = scan_folder(args.data)
    manifest = split_folder(folder, args.ratios, args.seed)
    out = Path(args.out) if args.out else Path(f"{folder.root.resolve().name}-split.csv")
    write_manifest(manifest, out)
    counts = manifest.counts()
    print(f"{out}: " + ", ".join(f"{role} {sum(counts[role].values())}" for role in counts))
    for name in manifest.classes:
        print(f"  {name}: " + ", ".join(f"{role} {counts[role][name]}" for role in counts))
    for path, reason in folder.skipped:
        print(f"  skipped {path}: {reason}")
    return 0


# ---- train / evaluate -----------------------------------------------------------------------------
def cmd_train(args) -> int:
    from zoolens.evaluation.evaluate import format_evaluation
    from zoolens.training.distributed import current_rank
    from zoolens.training.trainer import train

    config = training_config(args)
    model = train(args.data, args.out, config=config, split_file=args.split, progress=not args.quiet,
                  resume=args.resume)
    if current_rank() != 0:  # another process of a multi-device run: the first one reports and saves
        return 0
    if model.evaluation is not None:
        print(format_evaluation(model.evaluation))
    out = Path(args.out)
    print(f"\nmodel saved to {out}/ (training curves: {out / 'training_curves.png'}, "
          f"confusion matrix: {out / 'evaluation' / 'confusion_matrix.png'})")
    return 0


def cmd_evaluate(args) -> int:
    from zoolens.evaluation.evaluate import evaluate, format_evaluation, write_evaluation
    from zoolens.files import check_apart
    from zoolens.inference.model import Model

    model = Model.load(args.model)
    out = Path(args.out) if args.out else Path(args.model) / "evaluation"
    for folder in [args.data, *(args.unknown or [])]:
        check_apart(folder, out, data_name="the photo folder")
    evaluation = evaluate(model, args.data, progress=not args.json, open_set=args.open_set)
    written = write_evaluation(evaluation, out)
    summary = evaluation.summary()
    text = format_evaluation(evaluation)
    if args.unknown:
        from zoolens.evaluation.open_set_eval import evaluate_open_set, format_open_set, write_open_set

        open_set = evaluate_open_set(model, evaluation, [Path(folder) for folder in args.unknown],
                                     open_set=args.open_set, progress=not args.json)
        written.update(write_open_set(open_set, out))
        summary["open_set"] = open_set.summary()
        text += "\n\n" + format_open_set(open_set)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(text)
        print("\n" + "\n".join(f"wrote {path}" for path in written.values()))
    return 0


# ---- predict --------------------------------------------------------------------------------------
def _print_predictions(predictions, top_k: int) -> None:
    width = min(60, max(len(p.source) for p in predictions))
    answers = [p.describe() for p in predictions]
    answer_width = min(70, max(len(a) for a in answers))
    for p, answer in zip(predictions, answers):
        if p.error:
            print(f"{p.source:<{width}}  error: {p.error}")
            continue
        others = "  ".join(f"{label} {prob:.1%}" for label, prob in p.top[:top_k])
        print(f"{p.source:<{width}}  {answer:<{answer_width}}   top-{top_k}: {others}")


def cmd_predict_folder(args) -> int:
    """`zoolens predict MODEL DIR --out results.parquet`: the resumable batch job (zoolens.inference.batch)."""
    from zoolens.inference.batch import format_summary, predict_folder, summary_rows

    if args.imagenet or len(args.model_and_paths) != 2:
        raise ZoolensError("usage: zoolens predict MODEL FOLDER --out RESULTS.parquet (one model, one folder)")
    model_path, folder = args.model_and_paths
    summary = predict_folder(
        model_path, folder, args.out, top_k=args.top_k,
        min_confidence=args.min_confidence if args.min_confidence is not None else 0.0, open_set=args.open_set,
        sort_target=args.sort_into, copy=args.copy, summary_csv=args.summary, workers=args.workers,
        limit=args.limit, engine=args.engine, ray_address=args.ray_address, concurrency=args.concurrency,
    )
    print(format_summary(*summary_rows(summary.per_folder, summary.classes)))
    print(f"wrote {summary.out}/ (Parquet parts) and {summary.summary_csv}")
    return 0


def cmd_predict(args) -> int:
    if args.out:
        return cmd_predict_folder(args)
    if any(getattr(args, option) for option in ("sort_into", "copy", "limit", "ray_address")) or args.engine != "local":
        raise ZoolensError("--sort-into, --copy, --limit, --engine and --ray-address need --out RESULTS.parquet")
    threshold = args.min_confidence if args.min_confidence is not None else 0.0
    if args.groups and not args.imagenet:
        raise ZoolensError("--groups needs --imagenet: zoolens predict --imagenet --groups PATH...")
    if args.imagenet:
        from zoolens.inference.imagenet import ImageNetClassifier

        inputs = _expand_inputs(args.model_and_paths)
        predictions = ImageNetClassifier(args.backbone).predict(inputs, top_k=args.top_k, min_confidence=threshold,
                                                                by_group=args.groups)
    else:
        from zoolens.inference.model import Model

        if len(args.model_and_paths) < 2:
            raise ZoolensError("usage: zoolens predict MODEL PATH... (or zoolens predict --imagenet PATH...)")
        model = Model.load(args.model_and_paths[0])
        inputs = _expand_inputs(args.model_and_paths[1:])
        predictions = model.predict(inputs, top_k=args.top_k, min_confidence=threshold, progress=len(inputs) > 64,
                                    open_set=args.open_set)
    _print_predictions(predictions, args.top_k)
    if args.csv:
        from zoolens.inference.prediction import write_csv

        write_csv(predictions, Path(args.csv), args.top_k)
        print(f"wrote {args.csv}")
    return 0


def cmd_export(args) -> int:
    from zoolens.evaluation.evaluate import choose_photos, recorded_data_folder
    from zoolens.inference.export import check_export, export_onnx
    from zoolens.inference.model import Model

    model = Model.load(args.model)
    out = export_onnx(model, Path(args.out) if args.out else Path(args.model) / "model.onnx")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): images (N, 3, {model.preprocessing.input_size}, "
          f"{model.preprocessing.input_size}) normalised -> class probabilities; classes in its metadata")
    data = args.check or recorded_data_folder(model)
    if data:
        samples, description, _ = choose_photos(model, data)
        check = check_export(model, out, samples)
        print(f"checked on {check.images} photos ({description}): same top-1 for {check.same_top1}, "
              f"largest probability difference {check.max_probability_difference:.2e}")
    return 0


def cmd_models(args) -> int:
    from zoolens.models.backbones import OFFLINE_WEIGHTS, describe_backbone, offline_weights_available

    print("backbone               source       input  pretrained weights")
    for name in OFFLINE_WEIGHTS:
        info = describe_backbone(name)
        state = "available offline" if offline_weights_available(name) else "not installed (download when online)"
        print(f"{name:<22} {info.source:<12} {info.preprocessing.input_size:>5}  {state}")
    print("\nAny other torchvision or timm model name also works as --backbone when its weights are in the\n"
          "local cache or can be downloaded.")
    return 0


# ---- parser ---------------------------------------------------------------------------------------
# Command families that live beside the code they drive; each module has `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("zoolens.apps.cli", "zoolens.evaluation.explain_cli", "zoolens.studies.cli")

def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options that shape a training run (TrainConfig fields); shared by train, study, kfold, tune."""
    parser.add_argument("--backbone", default="mobilenet_v2", help="mobilenet_v2 (default), efficientnet_lite0, ...")
    parser.add_argument("--strategy", default="frozen", choices=["frozen", "finetune", "scratch"],
                        help="frozen: cached features + dense head (default); finetune: then train through the "
                             "backbone; scratch: a randomly initialised network")
    parser.add_argument("--unfreeze", type=int, default=0, help="finetune only the last N backbone blocks (0: all)")
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "rmsprop"])
    parser.add_argument("--lr", type=float, help="learning rate (default head 1e-3, sgd 1e-2; fine-tuning 3e-5 adam/rmsprop, 1e-4 sgd)")
    parser.add_argument("--epochs", type=int, help="most epochs (default 60 head, 5 fine-tuning)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=8, help="early stopping: epochs without a better val loss")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout before the dense layer (default 0.5)")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--image-size", type=int, help="network input size (default: the backbone's)")
    parser.add_argument("--no-augment", action="store_true", help="fine-tune without augmentation")
    parser.add_argument("--ratios", default="70/10/20", help="train/val/test split (default 70/10/20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="auto", help="auto, cpu, gpu (Lightning)")
    parser.add_argument("--devices", default="auto",
                        help="auto, or how many devices (GPUs, or CPU processes) per machine; more than one "
                             "fine-tunes with DDP (docs/scale.md)")
    parser.add_argument("--num-nodes", type=int, default=1, help="machines in a multi-machine run (docs/scale.md)")
    parser.add_argument("--open-set-share", type=float, default=0.02,
                        help="share of the validation photos the 'none of these' / 'not sure' checks may turn "
                             "away (default 0.02; 'zoolens predict --open-set strict' uses at least 0.05)")


def training_config(args):
    from zoolens.training.trainer import TrainConfig

    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**options, augmentation=None if args.no_augment else TrainConfig().augmentation)


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
    inspect.add_argument("data", help="folder of class folders (or of train/val/test folders)")
    inspect.add_argument("--json", action="store_true", help="print JSON for machines")
    inspect.add_argument("--out", help="also write summary.json and class_balance.png to this folder")
    inspect.set_defaults(run=cmd_data_inspect, unfinished_outputs=ONE_SHOT_OUTPUTS)
    split = data.add_parser("split", help="write a stratified train/val/test manifest (CSV); no file is moved")
    split.add_argument("data")
    split.add_argument("--ratios", default="70/10/20", help="train/val/test, or train/test (default 70/10/20)")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--out", help="manifest file (default: ./<folder>-split.csv)")
    split.set_defaults(run=cmd_data_split, unfinished_outputs=ONE_SHOT_OUTPUTS)

    train = commands.add_parser("train", help="train a classifier by transfer learning")
    train.add_argument("data", help="folder of class folders (or of train/val/test folders)")
    train.add_argument("--out", required=True,
                       help="model folder to write, outside DATA; a zoolens model there is replaced (only its own "
                            "files: others in the folder are kept); one run at a time per folder")
    add_training_options(train)
    train.add_argument("--split", help="use this split manifest (from `zoolens data split`)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--resume", action="store_true",
                       help="go on from OUT.partial/, the per-epoch checkpoint an interrupted run left")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="metrics, report and confusion matrix on unseen photos")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--out", help="folder for the figures and metrics (default MODEL/evaluation)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--unknown", action="append", metavar="FOLDER",
                          help="photos of none of the model's classes (people, objects, other species; any layout): "
                               "how many it accepts as a class, how many of its own it turns away, AUROC (repeatable)")
    evaluate.add_argument("--open-set", default="on", choices=["on", "strict", "off"],
                          help="the open-set mode to measure (default on)")
    evaluate.set_defaults(run=cmd_evaluate, unfinished_outputs=ONE_SHOT_OUTPUTS)

    predict = commands.add_parser("predict", help="label, confidence and top-k for photos")
    predict.add_argument("model_and_paths", nargs="+", metavar="MODEL PATH", help="model folder, then files or folders")
    predict.add_argument("--imagenet", action="store_true", help="no model: the pretrained ImageNet classes")
    predict.add_argument("--groups", action="store_true",
                         help="with --imagenet: animal group (dog, snake, bird, ...) summed over its ImageNet classes")
    predict.add_argument("--backbone", default="mobilenet_v2", help="network for --imagenet")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--min-confidence", type=float,
                         help="answer 'not sure' below this probability (on top of the model's calibrated threshold)")
    predict.add_argument("--open-set", default="on", choices=["on", "strict", "off"],
                         help="'none of these' for people, objects, empty frames and other species: on (default, "
                              "turns away 2%% of the model's own validation photos), strict (5%%) or off")
    predict.add_argument("--csv", help="also write one row per photo to this CSV")
    batch = predict.add_argument_group("a whole folder tree, resumable (zoolens predict MODEL FOLDER --out ...)")
    batch.add_argument("--out", metavar="RESULTS.parquet",
                       help="write results as a Parquet folder of parts; run again to go on where it stopped")
    batch.add_argument("--sort-into", metavar="FOLDER",
                       help="link each photo into FOLDER/<class>/, 'not sure/' or 'none of these/'")
    batch.add_argument("--copy", action="store_true", help="with --sort-into: copy instead of linking")
    batch.add_argument("--summary", metavar="CSV", help="per-folder counts (default: RESULTS-summary.csv beside it)")
    batch.add_argument("--workers", type=int, help="photo-decoding processes (default: CPU count, at most 4)")
    batch.add_argument("--limit", type=int, help="stop after this many new photos (the next run goes on)")
    batch.add_argument("--engine", default="local", choices=["local", "ray"],
                       help="local (default) or ray: the same job on Ray Data (pip install 'zoolens[scale]')")
    batch.add_argument("--ray-address", help="with --engine ray: a running cluster, e.g. ray://host:10001 "
                                             "(default: start a local one)")
    batch.add_argument("--concurrency", type=int, help="with --engine ray: model replicas (default: 2)")
    predict.set_defaults(run=cmd_predict, unfinished_outputs=("csv",))  # --out results go on when run again

    export = commands.add_parser("export", help="the whole classifier as one ONNX file, for deployment")
    export.add_argument("model")
    export.add_argument("--format", default="onnx", choices=["onnx"])
    export.add_argument("--out", help="file to write (default MODEL/model.onnx)")
    export.add_argument("--check", metavar="DATA", help="compare with PyTorch on these photos (default: its test part)")
    export.set_defaults(run=cmd_export, unfinished_outputs=ONE_SHOT_OUTPUTS)

    models = commands.add_parser("models", help="backbones and whether their weights are available offline")
    models.set_defaults(run=cmd_models)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not os.environ.get("ZOOLENS_DEBUG"):
        warnings.filterwarnings("ignore")
    created = outputs_it_would_create(args)
    try:
        with printable_output():
            return args.run(args)
    except ZoolensError as error:
        remove_unfinished(created)
        print(f"zoolens: error: {printable(error)}", file=sys.stderr)
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


if __name__ == "__main__":
    run()
