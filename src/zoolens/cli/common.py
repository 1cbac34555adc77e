"""What the command families share: the photo arguments, and the options that shape a training run."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from zoolens.choices import DEFAULT_BACKBONE, DEFAULT_RATIOS, GROUP_BY, Balance, Optimizer, Strategy
from zoolens.errors import ZoolensError

DATA_HELP = ("a folder of class folders (or of train/, val/ and test/ folders of them), a labels CSV (filepath,label "
             "[,split][,site]; paths relative to it) or a Camtrap DP package's folder")
MODEL_HELP = "a model folder (what `zoolens train` wrote)"


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders walked for their photos as `Model.predict` walks them (`prediction.input_list`)."""
    from zoolens.inference.prediction import input_list

    paths = [Path(item) for item in input_list(list(items))]
    if not paths:
        raise ZoolensError(f"no image files in {', '.join(items)}")
    return paths


def refuse_unless(args, applies: bool, options: tuple[str, ...], why: str) -> None:
    """Options written on the command line that would do nothing here are refused in one line, not ignored:
    `refuse_unless(args, args.imagenet, ("groups",), "only with --imagenet")`."""
    used = [name for name in options if name in getattr(args, "given", ())]
    if used and not applies:
        raise ZoolensError(f"{', '.join(as_flag(name) for name in used)}: {why}")


def as_flag(field: str) -> str:
    return f"--{field.replace('_', '-')}"


CORRECTIONS_HELP = ("a corrections file (path,action,label: relabel / exclude / keep), from `zoolens data issues` or "
                    "the web app's review page; the photos are never changed")


def add_corrections_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corrections", metavar="FILE.csv", help=CORRECTIONS_HELP)


def add_grouping_options(parser: argparse.ArgumentParser) -> None:
    """What a split keeps together (data.grouping); for the commands that split: data split / issues, train, kfold."""
    from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S

    parser.add_argument("--group-by", choices=GROUP_BY,
                        help="keep the photos of one event (a burst: frames of one camera within --sequence-gap), "
                             "camera or site in one part of the split (default: event for a labels CSV or Camtrap DP "
                             "package, none for class folders)")
    parser.add_argument("--sequence-gap", type=float, default=DEFAULT_SEQUENCE_GAP_S, metavar="SECONDS",
                        help="frames of one camera this close in time are one event "
                             f"(default {DEFAULT_SEQUENCE_GAP_S:g})")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options that shape a training run (TrainConfig fields); shared by train, study, kfold, tune."""
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help="the pretrained network: mobilenet_v2, efficientnet_lite0, ... "
                             "(`zoolens models` lists them); several joined by + (mobilenet_v2+efficientnet_lite2) "
                             "are an ensemble: their features side by side, one head, trained frozen")
    parser.add_argument("--strategy", default=Strategy.FROZEN.value, choices=Strategy.values(),
                        help="frozen: cached features + dense head (default); finetune: then train through the "
                             "backbone; scratch: a randomly initialised network; recipe: fine-tune the timm/fastai "
                             "way (warmed head, layer-wise rates, warm-up + cosine, label smoothing, MixUp/CutMix, "
                             "weight EMA; small photos enlarged 3x)")
    parser.add_argument("--unfreeze", type=int, default=0, help="finetune only the last N backbone blocks (0: all)")
    parser.add_argument("--optimizer", default=Optimizer.ADAM.value, choices=Optimizer.values(), help="optimizer")
    parser.add_argument("--lr", type=float,
                        help="learning rate (default head 1e-3, sgd 1e-2; fine-tuning 3e-5 adam/rmsprop, 1e-4 sgd)")
    parser.add_argument("--epochs", type=int, help="most epochs (default 60 head, 5 fine-tuning)")
    parser.add_argument("--batch-size", type=int, default=32, help="photos per training step")
    parser.add_argument("--patience", type=int, default=8,
                        help="early stopping: epochs without a better validation loss")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout before the dense layer")
    parser.add_argument("--label-smoothing", type=float, default=0.0,
                        help="share of each label spread over the other classes")
    parser.add_argument("--image-size", type=int, help="network input size (default: the backbone's)")
    parser.add_argument("--balance", default=Balance.NONE.value, choices=Balance.values(),
                        help="weighted: every class counts the same in the loss however many photos it has "
                             "(for unbalanced classes)")
    parser.add_argument("--no-augment", action="store_true",
                        help="fine-tune or train from scratch without augmentation")
    parser.add_argument("--ratios", default=DEFAULT_RATIOS, help="train/val/test split")
    parser.add_argument("--seed", type=int, default=0, help="the split, the initial weights and the batches' order")
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    parser.add_argument("--devices", default="auto",
                        help="auto, or how many devices (GPUs, or CPU processes) per machine; more than one "
                             "fine-tunes with DDP (docs/scale.md)")
    parser.add_argument("--num-nodes", type=int, default=1, help="machines in a multi-machine run (docs/scale.md)")
    parser.add_argument("--open-set-share", type=float, default=0.02,
                        help="share of the validation photos the 'none of these' / 'not sure' checks may turn "
                             "away (default 0.02; `zoolens predict --open-set strict` uses at least 0.05)")


def training_config(args):
    from zoolens.training.config import TrainConfig

    refuse_unless(args, args.strategy != Strategy.FROZEN, ("no_augment",),
                  "has nothing to change with --strategy frozen: its head trains on cached features, never augmented")
    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**options, augmentation=None if args.no_augment else TrainConfig().augmentation)
