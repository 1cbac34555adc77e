"""`zoolens explain` and `zoolens report`: thin commands over zoolens.evaluation.explain and .report."""

from __future__ import annotations

import sys

from zoolens.choices import DEFAULT_BACKBONE, EXPLAIN_CHOICES, Explanation
from zoolens.cli.common import MODEL_HELP
from zoolens.errors import ZoolensError


def cmd_explain(args) -> int:
    from zoolens.cli.common import expand_inputs, refuse_unless
    from zoolens.evaluation.explain import Explainable, explain, write_explanations
    from zoolens.files import check_apart

    refuse_unless(args, args.imagenet, ("backbone",), "only with --imagenet (a model explains its own network)")
    check_apart(args.model_and_images[0 if args.imagenet else 1:], args.out, data_name="the photo folder")
    if args.imagenet:
        target = Explainable.imagenet(args.backbone)
        inputs = expand_inputs(args.model_and_images)
    else:
        if len(args.model_and_images) < 2:
            raise ZoolensError("usage: zoolens explain MODEL IMAGE... (or zoolens explain --imagenet IMAGE...)")
        target = Explainable.from_model(args.model_and_images[0])
        inputs = expand_inputs(args.model_and_images[1:])
    explanations = explain(target, inputs, args.method, batch_size=args.batch_size, progress=len(inputs) > 8)
    if all(e.error for e in explanations):
        first = explanations[0]
        raise ZoolensError(f"{first.source}: {first.error}" + (" (and every other image)" if len(inputs) > 1 else ""))
    written = write_explanations(explanations, args.out, args.method)
    width = min(60, max(len(e.source) for e in explanations))
    for explanation, path in zip(explanations, written):
        if explanation.error:
            print(f"{explanation.source:<{width}}  error: {explanation.error}", file=sys.stderr)
        else:
            print(f"{explanation.source:<{width}}  {explanation.title}  -> {path}")
    failed = sum(1 for e in explanations if e.error)
    print(f"wrote {len(explanations) - failed} explanation(s) to {args.out}/" + (f"; {failed} unusable" if failed else ""))
    return 1 if failed else 0


def cmd_report(args) -> int:
    from zoolens.evaluation.report import write_report

    out = write_report(args.model, data=args.data, out=args.out, progress=not args.quiet,
                       open_set_results=args.open_set_results)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.1f} MB, self-contained: open it in any browser, offline)")
    return 0


def register(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain", help="Grad-CAM / saliency heat maps over photos: what the network looked at")
    explain.add_argument("model_and_images", nargs="+", metavar="MODEL PHOTO",
                         help="a model folder, then photos or folders of photos (with --imagenet: photos only)")
    explain.add_argument("--imagenet", action="store_true", help="no model: explain the pretrained ImageNet network")
    explain.add_argument("--backbone", default=DEFAULT_BACKBONE, help="network for --imagenet")
    explain.add_argument("--method", default=Explanation.GRADCAM.value, choices=EXPLAIN_CHOICES,
                         help="Grad-CAM (where the last convolutions looked), saliency (which pixels mattered) or both")
    explain.add_argument("--out", metavar="FOLDER", default="explanations", help="folder for the PNGs")
    explain.add_argument("--batch-size", type=int, default=16, help="photos explained at once")
    explain.set_defaults(run=cmd_explain, unfinished_outputs=("out",))

    report = subparsers.add_parser("report", help="one self-contained HTML report of a model")
    report.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    report.add_argument("--data", metavar="DATA",
                        help="a folder of class folders (default: the folder the model was trained on)")
    report.add_argument("--out", metavar="FILE.html", help="HTML file to write (default MODEL/report.html)")
    report.add_argument("--open-set-results", metavar="JSON",
                        help="the open_set.json of `zoolens evaluate --unknown` (default MODEL/evaluation/open_set.json)")
    report.add_argument("--quiet", action="store_true", help="no progress output")
    report.set_defaults(run=cmd_report, unfinished_outputs=("out",))

