"""Training on several processes: Lightning's DDP on CPU (gloo), launched by Lightning itself and by torchrun.

Each run is a real `zoolens train` command, as a user would type it: the launcher re-runs the command once
per extra process, so it cannot be called in-process from pytest."""

import csv
import os
import re
import subprocess
import sys

import pytest
from helpers import copy_subset

from zoolens.evaluation.evaluate import evaluate
from zoolens.inference.model import Model


def run_train(data, out, cache, *options, launcher=()):
    command = [*launcher, "-m", "zoolens.cli", "train", str(data), "--out", str(out), "--accelerator", "cpu",
               *map(str, options)]
    if not launcher:
        command = [sys.executable, *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False,
                            env={**os.environ, "ZOOLENS_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def shared_counts(stderr: str) -> list[int]:
    """How many photos each process ran through the backbone, from the line the first process prints."""
    found = re.search(r"(\d+) new photos through the backbone, shared between (\d+) processes \(([\d + ]+)\)", stderr)
    assert found, stderr[-3000:]
    return [int(n) for n in found.group(3).split("+")]


@pytest.fixture(scope="module")
def ddp_animals(animals3, tmp_path_factory):
    """100 photos per class to train on; 200 other photos per class to compare the two models on."""
    root = tmp_path_factory.mktemp("ddp")
    return copy_subset(animals3, root / "train", per_class=100), copy_subset(animals3, root / "judge", 200, offset=600)


def test_two_process_ddp_finetuning_matches_one_process(ddp_animals, tmp_path):
    data, judge = ddp_animals
    cache = tmp_path / "cache"  # empty: the two processes share out the feature extraction
    # Without augmentation or dropout, the only randomness left is the shuffle, which the processes share:
    # two processes must then learn what one does, epoch by epoch.
    options = ("--strategy", "finetune", "--image-size", "128", "--epochs", "3", "--no-augment", "--dropout", "0")
    ddp = run_train(data, tmp_path / "ddp", cache, *options, "--devices", "2")
    assert shared_counts(ddp.stderr) == [150, 150]  # every photo once, half each
    assert ddp.stdout.count("Model saved to") == 1  # only the first process reports and saves
    run_train(data, tmp_path / "single", cache, *options, "--devices", "1")

    models = {name: Model.load(tmp_path / name) for name in ("ddp", "single")}
    assert models["ddp"].meta["training"]["processes"] == 2
    assert models["single"].meta["training"]["processes"] == 1
    with open(tmp_path / "ddp" / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    tuned = [float(row["val_loss"]) for row in history if row["phase"] == "finetune"]
    head = [float(row["val_loss"]) for row in history if row["phase"] == "head"]
    assert len(tuned) == 3 and min(tuned) < min(head)  # the fine-tuned network was kept, not the warm head
    with open(tmp_path / "single" / "history.csv", newline="") as handle:
        single_tuned = [float(row["val_loss"]) for row in csv.DictReader(handle) if row["phase"] == "finetune"]
    assert tuned == pytest.approx(single_tuned, rel=0.05)
    accuracy = {name: evaluate(model, judge, progress=False).accuracy for name, model in models.items()}
    assert accuracy["single"] >= 0.9
    assert abs(accuracy["ddp"] - accuracy["single"]) <= 0.01, accuracy
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())  # checkpoints removed by process 0


def test_torchrun_launch_needs_no_device_count(small_animals, trained_model, tmp_path):
    run = run_train(small_animals, tmp_path / "torchrun", tmp_path / "cache",
                    launcher=(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"))
    assert sum(shared_counts(run.stderr)) == 180 and min(shared_counts(run.stderr)) > 0
    model = Model.load(tmp_path / "torchrun")
    assert model.meta["training"]["processes"] == 2
    assert abs(model.meta["metrics"]["accuracy"] - trained_model.evaluation.accuracy) <= 1 / 36


def test_studies_refuse_several_devices(small_animals, tmp_path):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", "kfold", str(small_animals), "--out",
                             str(tmp_path / "k"), "--devices", "2"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 2
    assert "several devices are for zoolens train" in result.stderr
    assert "Traceback" not in result.stderr
