"""What each command's help says beyond its options: a usage line that says what goes where (a model folder, then
photos; not "MODEL PATH [MODEL PATH ...]"), and one or two examples. `zoolens.cli.program` applies it to every
parser; a test checks that every command has both."""

from __future__ import annotations

import argparse

# The words the usage lines use, said once under each command's examples.
TERMS = ("DATA is a folder of class folders (cats/, dogs/, ...), or of train/, val/ and test/ folders of them;\n"
         "MODEL is a model folder that `zoolens train` wrote.")

COMMANDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "": (None, (
        "zoolens data inspect photos/                 # what is in a folder of class folders",
        "zoolens train photos/ --out my-model         # a classifier, in seconds on a CPU",
        "zoolens predict my-model cat.jpg             # what a photo is ('none of these' if none of the classes)",
        "zoolens report my-model                      # one HTML page: how good it is, where it goes wrong",
        "zoolens COMMAND --help                       # each command's options and examples")),
    "data inspect": ("zoolens data inspect DATA [--out FOLDER] [--json]", (
        "zoolens data inspect photos/                      # classes, counts, sizes, duplicates, unusable files",
        "zoolens data inspect photos/ --out photos-report/  # also summary.json and class_balance.png")),
    "data split": ("zoolens data split DATA [--ratios 70/10/20] [--seed N] [--out MANIFEST.csv]", (
        "zoolens data split photos/ --ratios 80/10/10 --out photos-split.csv",
        "zoolens train photos/ --split photos-split.csv --out my-model   # then train on that split")),
    "data issues": ("zoolens data issues DATA --out FOLDER [--split MANIFEST.csv]", (
        "zoolens data issues photos/ --out photos-issues/   # wrong labels, near-copies, outliers: CSVs and sheets",)),
    "train": ("zoolens train DATA --out MODEL [options]", (
        "zoolens train photos/ --out my-model                       # frozen MobileNetV2 + a dense head (seconds)",
        "zoolens train photos/ --out my-model --strategy finetune   # then fine-tune the whole network")),
    "evaluate": ("zoolens evaluate MODEL DATA [--unknown FOLDER ...] [--out FOLDER] [--json]", (
        "zoolens evaluate my-model new-photos/",
        "zoolens evaluate my-model new-photos/ --unknown people/ --unknown objects/   # 'none of these' too")),
    "predict": ("zoolens predict MODEL PHOTO [PHOTO ...] [options]\n"
                "       zoolens predict --imagenet PHOTO [PHOTO ...] [options]\n"
                "       zoolens predict MODEL FOLDER --out RESULTS.parquet [options]", (
        "zoolens predict my-model cat.jpg holiday/            # photos or folders of them",
        "zoolens predict --imagenet --groups snake.jpg        # no model: ImageNet's classes, summed by animal group",
        "zoolens predict my-model camera-trap/ --out results.parquet --sort-into sorted/   # resumable batch job",
        "zoolens predict my-model traps/ --out results.parquet --camera-traps   # each frame blank, animal, person or "
        "vehicle (for zoolens results)")),
    "results": ("zoolens results RESULTS.parquet [--megadetector FILE.json] [--camtrap-dp FOLDER --deployments FILE.csv "
                "--project FILE.json [--timezone +HH:MM]] [--events FILE.csv] [--report FILE.html] "
                "[--sequence-gap SECONDS]", (
        "zoolens results results.parquet --megadetector md.json     # for Timelapse and AddaxAI (after zoolens predict "
        "my-model traps/ --out results.parquet --camera-traps)",
        "zoolens results results.parquet --camtrap-dp package/ --deployments deployments.csv --project project.json "
        "--timezone +02:00",
        "zoolens results results.parquet --events events.csv --report season.html")),
    "export": ("zoolens export MODEL [--out FILE.onnx] [--check DATA]", (
        "zoolens export my-model                      # my-model/model.onnx, checked on the model's test photos",)),
    "models": ("zoolens models", ("zoolens models",)),
    "desktop": ("zoolens desktop [MODEL] [options]", (
        "zoolens desktop my-model",
        "zoolens desktop                              # no model: the 1000 ImageNet classes")),
    "web": ("zoolens web [MODEL] [options]", (
        "zoolens web                                  # every model in ./runs, at http://127.0.0.1:8501",
        "zoolens web my-model --port 8600")),
    "dogs": ("zoolens dogs PHOTO [PHOTO ...] [--breeds MODEL] [options]\n"
             "       zoolens dogs --audit [--n 100] [--seed 0]", (
        "zoolens dogs dog.jpg me.jpg                  # a dog's breed, or the breed a face resembles",
        "zoolens dogs --audit --n 50                  # how often the dog and face detectors are right")),
    "explain": ("zoolens explain MODEL PHOTO [PHOTO ...] [options]\n"
                "       zoolens explain --imagenet PHOTO [PHOTO ...] [options]", (
        "zoolens explain my-model cat.jpg --method both   # Grad-CAM and saliency PNGs in ./explanations",)),
    "report": ("zoolens report MODEL [--data DATA] [--out FILE.html]", (
        "zoolens report my-model                      # my-model/report.html, one self-contained page",)),
    "study": ("zoolens study STUDY --data DATA [--budget small|full] [--out FOLDER]\n"
              "       zoolens study STUDY                  # what it compares, without running it", (
        "zoolens study pretrained-vs-scratch          # its experiments and the report it reproduces",
        "zoolens study pretrained-vs-scratch --data photos/ --budget small",
        "zoolens study my-study.yaml --data photos/   # your own experiments (docs: README, Studies)")),
    "kfold": ("zoolens kfold DATA --out FOLDER [--k 5] [training options]", (
        "zoolens kfold photos/ --k 5 --out cv/        # mean and spread of every metric; the best fold's model kept",)),
    "tune": ("zoolens tune DATA --out FOLDER [--trials 20] [--method tpe|random|grid] [training options]", (
        "zoolens tune photos/ --out tuned/ --trials 20   # best settings in tuned/best_config.json",)),
}


def add_examples(command: argparse.ArgumentParser, words: str) -> None:
    """The usage line and examples of the command `words` ("data split"), and the help's formatting."""
    command.formatter_class = HelpWithDefaults
    command.allow_abbrev = False  # every option written in full, so that `options_given` sees each
    if words in COMMANDS:
        usage, examples = COMMANDS[words]
        command.usage = usage or command.usage
        command.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) + "\n\n" + TERMS


class HelpWithDefaults(argparse.RawDescriptionHelpFormatter):
    """Each option's default shown after its help, where the help does not already say it; examples kept as
    written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or isinstance(action.default, bool) or action.default == argparse.SUPPRESS
        if "default" in text or not action.option_strings or action.required or unset:
            return text
        return f"{text} (default: %(default)s)".lstrip()
