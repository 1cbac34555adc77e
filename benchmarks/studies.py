"""The README's study table, each row re-run the way it was measured: prints one JSON object per row.

    .venv/bin/python benchmarks/studies.py [pretrained-vs-scratch] [frozen-vs-unfrozen] [kfold] [tune]

- pretrained-vs-scratch (seed 002's study): `zoolens study pretrained-vs-scratch --budget small` on CIFAR-10's six
  animal classes, the first 1000 training photos of each (copied into a temporary class folder; 70/10/20); about
  7 min on a 2-core CPU.
- frozen-vs-unfrozen (seed 003's): `zoolens study frozen-vs-unfrozen --budget small` on animals3 (80/20, 160 px);
  about 14 min.
- kfold: `zoolens kfold animals3 --k 5`; under a minute once animals3's features are cached.
- tune: `zoolens tune imagewoof --trials 12`; about 5 min once Imagewoof's features are cached.
Every run goes through the `zoolens` command in a new process, with the feature cache of ZOOLENS_CACHE.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CIFAR_ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")


def shared(name: str) -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset(name)


def zoolens(*args) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def cifar_animals(target: Path, per_class: int = 1000) -> Path:
    for name in CIFAR_ANIMALS:
        (target / name).mkdir(parents=True)
        for photo in sorted((shared("cifar10") / "train" / name).iterdir())[:per_class]:
            shutil.copyfile(photo, target / name / photo.name)
    return target


def study(preset: str, data: Path, out: Path) -> dict:
    seconds = zoolens("study", preset, "--data", data, "--budget", "small", "--out", out)
    with open(out / "comparison.csv", newline="") as handle:
        table = {row["experiment"]: round(float(row["accuracy"]), 4) for row in csv.DictReader(handle)}
    return {"benchmark": "study", "preset": preset, "test_accuracy": table, "seconds": seconds}


def kfold(out: Path) -> dict:
    seconds = zoolens("kfold", shared("animals3"), "--k", "5", "--out", out)
    summary = json.loads((out / "kfold.json").read_text())
    return {"benchmark": "kfold", "dataset": "animals3", "k": 5, "accuracy_mean": round(summary["accuracy_mean"], 4),
            "accuracy_std": round(summary["accuracy_std"], 4),
            "fold_accuracies": [round(row["accuracy"], 4) for row in summary["folds"]], "seconds": seconds}


def tune(out: Path) -> dict:
    seconds = zoolens("tune", shared("imagewoof"), "--trials", "12", "--out", out)
    summary = json.loads((out / "best_config.json").read_text())
    return {"benchmark": "tune", "dataset": "imagewoof", "trials": 12, "best_config": summary["best_config"],
            "best_test_accuracy": round(summary["best_test_accuracy"], 4),
            "default_test_accuracy": round(summary["default_test_accuracy"], 4), "seconds": seconds}


def main() -> None:
    rows = {"pretrained-vs-scratch": lambda scratch: study("pretrained-vs-scratch",
                                                           cifar_animals(scratch / "cifar-animals"), scratch / "s2"),
            "frozen-vs-unfrozen": lambda scratch: study("frozen-vs-unfrozen", shared("animals3"), scratch / "s3"),
            "kfold": lambda scratch: kfold(scratch / "kfold"),
            "tune": lambda scratch: tune(scratch / "tune")}
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="*", default=list(rows), choices=list(rows))
    for name in parser.parse_args().rows:
        with tempfile.TemporaryDirectory(prefix="zoolens-study-") as scratch:
            print(json.dumps(rows[name](Path(scratch))), flush=True)


if __name__ == "__main__":
    main()
