"""The core commands: data inspect / split, train, evaluate, predict, export, models. Each is a thin layer over the
Python API; `zoolens.cli.program` registers them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoolens.choices import Engine
from zoolens.cli.common import expand_inputs, refuse_unless, training_config
from zoolens.errors import ZoolensError


# ---- data -----------------------------------------------------------------------------------------
def cmd_data_inspect(args) -> int:
    from zoolens.data.inspect import format_summary, inspect_folder, plot_class_balance, plot_contact_sheet
    from zoolens.files import check_apart, output_folder

    if args.out:
        check_apart(args.data, args.out)
    summary = inspect_folder(args.data, progress=not args.json)
    if args.out:
        out = output_folder(args.out)
        (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
        plot_class_balance(summary, out / "class_balance.png")
        plot_contact_sheet(summary, out / "samples.png")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(format_summary(summary))
        if args.out:
            out = Path(args.out)
            print(f"wrote {out / 'summary.json'}, {out / 'class_balance.png'} and {out / 'samples.png'} "
                  "(a few photos of each class)")
    return 0


def cmd_data_split(args) -> int:
    from zoolens.data.corrections import corrected
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_folder, write_manifest
    from zoolens.files import check_apart

    out = Path(args.out) if args.out else Path(f"{Path(args.data).expanduser().resolve().stem}-split.csv")
    check_apart(args.data, out)  # the default too: ./<folder>-split.csv, run from inside the data folder
    folder = scan_folder(args.data)
    manifest, applied = corrected(split_folder(folder, args.ratios, args.seed, args.group_by, args.sequence_gap),
                                  args.corrections)
    write_manifest(manifest, out)
    counts = manifest.counts()
    done = applied.record() if applied else {}
    print(f"{out}: " + ", ".join(f"{role} {sum(counts[role].values())}" for role in counts)
          + (f" ({done['relabelled']} relabelled and {done['excluded']} left out by {args.corrections})"
             if applied else ""))
    for name in manifest.classes:
        print(f"  {name}: " + ", ".join(f"{role} {counts[role][name]}" for role in counts))
    if manifest.grouping:
        print(f"  {manifest.grouping}")
    for path, reason in folder.skipped:
        print(f"  skipped {path}: {reason}")
    return 0


def cmd_data_issues(args) -> int:
    from zoolens.evaluation.data_issues import find_data_issues, format_data_issues, write_data_issues
    from zoolens.files import check_apart

    refuse_unless(args, args.split is None, ("ratios", "seed", "group_by", "sequence_gap"),
                  "not with --split MANIFEST.csv, which is the split")
    check_apart(args.data, args.out)
    issues = find_data_issues(args.data, backbone=args.backbone, split_file=args.split, ratios=args.ratios,
                              seed=args.seed, corrections=args.corrections, progress=not args.quiet,
                              group_by=args.group_by, sequence_gap=args.sequence_gap)
    written = write_data_issues(issues, args.out)
    print(format_data_issues(issues))
    print("\nwrote " + ", ".join(str(path) for path in written.values()) + " (the photos were only read)")
    print("Next, one of:\n"
          f"  decide on each photo of {written['to_review']} (action: relabel, exclude or keep), then train with "
          f"--corrections {written['to_review']}\n"
          f"  look at them one by one: zoolens web --review {args.data}\n"
          f"  train on the fixes suggested for the training part: zoolens train {args.data}"
          f"{f' --split {args.split}' if args.split else ''} --corrections {written['suggested_corrections']}")
    return 0


# ---- train / evaluate -----------------------------------------------------------------------------
PRESET_HELP = ("best: MobileNetV2 and EfficientNet-Lite2 side by side at 260 px, frozen, one head; the default's split. "
               "Measured (docs/measurements.md): Imagewoof 94.2 %%, animals3 99.3 %% (default 92.3 / 98.5) for "
               "3.3-4.2x the default's cold training CPU time; predicting costs about 4x the default's time for one "
               "photo (63 against 16 ms p50 on this 2-core CPU) and a third of its photos per second in a batch job "
               "(29 against 94 photos/s)")


def add_preset_option(parser) -> None:
    """--preset NAME: checked by TrainConfig (its field `preset`, one of choices.Preset), like every other setting."""
    from zoolens.choices import Preset

    parser.add_argument("--preset", metavar="|".join(Preset.values()), help=PRESET_HELP)


def cmd_train(args) -> int:
    refuse_unless(args, args.split is None, ("ratios", "group_by", "sequence_gap"),
                  "not with --split MANIFEST.csv, which already splits the photos")
    refuse_unless(args, args.preset is None, ("backbone", "strategy", "image_size"),
                  "not with --preset, which chooses it")
    config = training_config(args)
    config.validate()  # a wrong setting refused at once, before PyTorch loads
    if not args.quiet:  # at once: the imports below take a second or more on a small machine
        print(f"training a classifier on {args.data} into {args.out}", file=sys.stderr, flush=True)
    from zoolens.evaluation.evaluate import format_evaluation, result_sentence
    from zoolens.runtime.distributed import current_rank
    from zoolens.training.trainer import train

    model = train(args.data, args.out, config=config, split_file=args.split, corrections=args.corrections,
                  progress=not args.quiet, resume=args.resume)
    if current_rank() != 0:  # another process of a multi-device run: the first one reports and saves
        return 0
    out = Path(args.out)
    if model.evaluation is not None:
        print(format_evaluation(model.evaluation))
        print(f"\n{result_sentence(model.evaluation)}: the test part of the split, kept out of training.")
    print(f"Model saved to {out}/ (training curves: {out / 'training_curves.png'}, "
          f"confusion matrix: {out / 'evaluation' / 'confusion_matrix.png'}).\n"
          f"Next: zoolens predict {out} PHOTO...   or   zoolens report {out}   (one page: how good it is, "
          "where it goes wrong)")
    return 0


def cmd_evaluate(args) -> int:
    from zoolens.evaluation.evaluate import evaluate, format_evaluation, write_evaluation
    from zoolens.files import check_apart
    from zoolens.inference.bundle import read_meta
    from zoolens.inference.model import Model

    read_meta(args.model)  # a mistyped model is said first, before where its default output would land
    out = Path(args.out) if args.out else Path(args.model) / "evaluation"
    check_apart([args.data, *(args.unknown or [])], out, data_name="the photo folder")
    model = Model.load(args.model)
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
        others = "  ".join(f"{label} {prob:.1%}" for label, prob in p.named_top[:top_k])
        print(f"{p.source:<{width}}  {answer:<{answer_width}}   top-{top_k}: {others}")


def cmd_predict_folder(args) -> int:
    """`zoolens predict MODEL DIR --out results.parquet`: the resumable batch job (zoolens.inference.batch)."""
    from zoolens.inference.batch import BatchOptions, format_summary, predict_folder, summary_rows
    from zoolens.inference.batch.summary import default_summary_path

    if args.imagenet or len(args.model_and_paths) != 2:
        raise ZoolensError("usage: zoolens predict MODEL FOLDER --out RESULTS.parquet (one model, one folder)")
    model_path, folder = args.model_and_paths
    summary_csv = Path(args.summary) if args.summary else default_summary_path(Path(args.out))
    check_outputs_apart(folder, {"out": args.out, "sort_into": args.sort_into, "summary": summary_csv})
    options = BatchOptions(
        top_k=args.top_k, min_confidence=args.min_confidence if args.min_confidence is not None else 0.0,
        open_set=args.open_set, sort_into=args.sort_into, copy=args.copy, summary_csv=args.summary,
        workers=args.workers, limit=args.limit, engine=args.engine, ray_address=args.ray_address,
        concurrency=args.concurrency, camera_traps=args.camera_traps,
    )
    summary = predict_folder(model_path, folder, args.out, options)
    for line in summary.lines(args.limit):
        print(line, file=sys.stderr)
    header, rows = summary_rows(summary.per_folder, summary.classes)
    print(format_summary([summary.names.get(column, column) for column in header], rows))
    print(f"wrote {summary.out}/ (Parquet parts) and {summary.summary_csv}")
    return 0


def refuse_options_predict_ignores(args) -> None:
    """Every option either changes what `zoolens predict` does or is refused, in one line."""
    folder_job = bool(args.out)
    refuse_unless(args, folder_job, ("sort_into", "summary", "workers", "limit", "engine", "camera_traps"),
                  "only with --out RESULTS.parquet: zoolens predict MODEL FOLDER --out RESULTS.parquet ...")
    refuse_unless(args, bool(args.sort_into), ("copy",), "only with --sort-into FOLDER (it copies the photos it sorts)")
    refuse_unless(args, args.engine == Engine.RAY, ("ray_address", "concurrency"), "only with --engine ray")
    refuse_unless(args, not folder_job, ("csv",), "only for the photos listed here; a folder job (--out) writes "
                                                  "every row to RESULTS.parquet and the counts to --summary")
    refuse_unless(args, args.imagenet, ("groups", "backbone"),
                  "only with --imagenet: zoolens predict --imagenet --groups PHOTO... (a model has its own classes)")
    refuse_unless(args, not args.imagenet, ("open_set",),
                  "only for trained models; with --imagenet a photo with no animal is always said to have none")


def check_outputs_apart(photos, outputs: dict) -> None:
    """Every output of a predict run (option -> path, None when not asked for) away from the photos it reads: not
    one of the photo files, not among the photo folders, not a folder that holds them; before any work."""
    from zoolens.files import check_apart

    for option, path in outputs.items():
        check_apart(photos, path, option, data_name="the photo folder")


def cmd_predict(args) -> int:
    refuse_options_predict_ignores(args)
    if args.out:
        return cmd_predict_folder(args)
    threshold = args.min_confidence if args.min_confidence is not None else 0.0
    check_outputs_apart(args.model_and_paths[0 if args.imagenet else 1:], {"csv": args.csv})
    if args.imagenet:
        from zoolens.inference.imagenet import ImageNetClassifier

        inputs = expand_inputs(args.model_and_paths)
        predictions = ImageNetClassifier(args.backbone).predict(inputs, top_k=args.top_k, min_confidence=threshold,
                                                                by_group=args.groups)
    else:
        from zoolens.inference.model import Model

        if len(args.model_and_paths) < 2:
            raise ZoolensError("usage: zoolens predict MODEL PATH... (or zoolens predict --imagenet PATH...)")
        model = Model.load(args.model_and_paths[0])
        inputs = expand_inputs(args.model_and_paths[1:])
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
    from zoolens.files import check_apart
    from zoolens.inference.export import check_export, export_onnx
    from zoolens.inference.model import Model

    out = Path(args.out) if args.out else Path(args.model) / "model.onnx"
    if args.check:  # before the model loads
        check_apart(args.check, out, data_name="the photo folder")
    model = Model.load(args.model)
    data = args.check or recorded_data_folder(model)
    if data and not args.check:  # the photos it records being trained on: compared on, so never written among
        check_apart(data, out, data_name="the photo folder")
    out = export_onnx(model, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): images (N, 3, {model.preprocessing.input_size}, "
          f"{model.preprocessing.input_size}) normalised -> class probabilities; classes in its metadata")
    if data:
        samples, description, _ = choose_photos(model, data)
        check = check_export(model, out, samples)
        print(f"checked on {check.images} photos ({description}): same top-1 for {check.same_top1}, "
              f"largest probability difference {check.max_probability_difference:.2e}")
    return 0


def cmd_models(args) -> int:
    from zoolens.models.registry import list_backbones

    print("backbone               source       input  pretrained weights")
    for record in list_backbones():
        print(f"{record.name:<22} {record.source:<12} {record.input_size:>5}  {record.weights}")
        if record.summary:
            print(f"    {record.summary}")
    print("\nAny other torchvision or timm model name also works as --backbone when its weights are in the\n"
          "local cache or can be downloaded.")
    return 0
