"""Interruptions: a training run killed with SIGKILL goes on with --resume; a kill while saving never leaves a
half model; the feature cache never serves a torn or corrupted row."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_subset
from safetensors.torch import load_file

from zoolens.training.checkpoints import PROGRESS_FILE, checkpoint_folder

KILL_WAIT = 120  # seconds to wait for the first checkpoint before giving up
RUN_TIMEOUT = 180


def start_zoolens(*args, env=None) -> subprocess.Popen:
    # Its own session, so the kill reaches the data-loading workers too.
    return subprocess.Popen([sys.executable, "-m", "zoolens.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def saved_epoch(out: Path, phase: str) -> int:
    try:
        progress = json.loads((checkpoint_folder(out) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return 0  # not written yet, or caught between write and rename (never: it is replaced atomically)
    return progress["phases"].get(phase, {}).get("epoch", 0)


def wait_for_epoch(process: subprocess.Popen, out: Path, phase: str, epoch: int) -> None:
    deadline = time.monotonic() + KILL_WAIT
    while saved_epoch(out, phase) < epoch:
        assert process.poll() is None, f"training ended before its checkpoint: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def read_history(model: Path) -> list[dict]:
    with open(model / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_animals(small_animals, tmp_path_factory) -> Path:
    return copy_subset(small_animals, tmp_path_factory.mktemp("tiny") / "animals", per_class=30)


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(tiny_animals, tmp_path):
    out = tmp_path / "model"
    options = ["train", tiny_animals, "--out", out, "--strategy", "scratch", "--backbone", "seed002_baseline",
               "--image-size", "64", "--epochs", "8", "--patience", "50", "--quiet"]
    process = start_zoolens(*options)
    try:
        wait_for_epoch(process, out, "scratch", 2)
    finally:
        kill_group(process)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # the bundle is written only at the end
    checkpoint = json.loads((checkpoint_folder(out) / PROGRESS_FILE).read_text())["phases"]["scratch"]
    done = checkpoint["epoch"]
    assert 2 <= done < 8 and not checkpoint["finished"]
    tensor_files = sorted(p.name for p in checkpoint_folder(out).glob("*.safetensors"))
    # The epoch progress.json names, and at most the one before it (a kill between the commit and its removal).
    assert checkpoint["tensors"] in tensor_files and len(tensor_files) <= 2, tensor_files
    saved_tensors = load_file(str(checkpoint_folder(out) / checkpoint["tensors"]))
    assert any(k.startswith("optimizer.") for k in saved_tensors) and any(k.startswith("network.") for k in saved_tensors)
    assert not list(checkpoint_folder(out).glob("*.pt*")) and not list(checkpoint_folder(out).glob("*.ckpt"))

    resumed = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, options[:-1]), "--resume"],
                             capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr
    assert f"scratch: {done} epoch(s) restored from the checkpoint" in resumed.stderr
    phase_line = next(l for l in resumed.stderr.splitlines() if re.search(r"\d\d:\d\d:\d\d scratch 8/8 ", l))
    assert f"({8 - done} this run)" in phase_line  # only the epochs that were left
    history = read_history(out)
    assert [int(r["epoch"]) for r in history] == list(range(1, 9))
    for before, after in zip(checkpoint["history"], history[:done]):  # the saved epochs are kept, not redone
        assert float(after["val_loss"]) == pytest.approx(before["val_loss"])
    assert not checkpoint_folder(out).exists()  # cleaned up once the model is saved
    meta = json.loads((out / "zoolens.json").read_text())
    assert meta["training"]["epochs_run"] == 8
    assert meta["metrics"]["accuracy"] > 0.4  # three classes: chance is 1/3


def test_resume_with_no_checkpoint_says_so_and_trains_from_the_start(tiny_animals, tmp_path, caplog):
    import logging

    import zoolens

    caplog.set_level(logging.INFO, logger="zoolens")
    model = zoolens.train(tiny_animals, tmp_path / "m", resume=True, epochs=3, image_size=64)
    assert f"no checkpoint at {tmp_path / 'm.partial'}; starting from the beginning" in caplog.messages
    assert [row["epoch"] for row in model.history] == [1, 2, 3] and (tmp_path / "m" / "zoolens.json").exists()


# a real training process started, killed at its first epoch, resumed: 17 s
def test_resume_with_different_options_is_refused(tiny_animals, tmp_path):
    out = tmp_path / "model"
    process = start_zoolens("train", tiny_animals, "--out", out, "--strategy", "scratch", "--backbone",
                            "seed002_baseline", "--image-size", "64", "--epochs", "20", "--quiet")
    try:
        wait_for_epoch(process, out, "scratch", 1)
    finally:
        kill_group(process)
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", "train", str(tiny_animals), "--out", str(out),
                             "--strategy", "scratch", "--backbone", "seed002_baseline", "--image-size", "64",
                             "--epochs", "20", "--lr", "0.5", "--resume"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "different options (lr)" in result.stderr, result.stderr


def test_frozen_run_resumes_a_finished_head_without_retraining(tiny_animals, tmp_path, monkeypatch):
    import shutil

    import zoolens
    from zoolens.training.checkpoints import TrainingCheckpoints

    out = tmp_path / "model"
    # As if interrupted after the head finished but before the bundle was saved: the checkpoint stays.
    monkeypatch.setattr(TrainingCheckpoints, "remove", lambda self: None)
    first = zoolens.train(tiny_animals, out, progress=False, image_size=64, epochs=5)
    shutil.rmtree(out)
    assert json.loads((checkpoint_folder(out) / PROGRESS_FILE).read_text())["phases"]["head"]["finished"]
    monkeypatch.undo()

    def no_training(*args, **kwargs):
        raise AssertionError("the finished head was trained again")

    monkeypatch.setattr("zoolens.models.dense_head.train_epoch", no_training)
    again = zoolens.train(tiny_animals, out, progress=False, image_size=64, epochs=5, resume=True)
    assert again.history == first.history
    for name, tensor in first.network.state_dict().items():
        assert np.array_equal(tensor.numpy(), again.network.state_dict()[name].numpy()), name
    assert not checkpoint_folder(out).exists()


KILL_WHILE_SAVING = """
import os, signal, sys, zoolens
from safetensors import numpy as sn, torch as st
model = zoolens.Model.load(sys.argv[1])
def then_die(original):
    def save_then_die(tensors, filename, metadata=None):
        original(tensors, filename, metadata=metadata)
        os.kill(os.getpid(), signal.SIGKILL)  # weights written, JSON not yet, nothing renamed
    return save_then_die
# A loaded model saves its NumPy arrays (no PyTorch), one being trained its tensors: either write is killed.
sn.save_file, st.save_file = then_die(sn.save_file), then_die(st.save_file)
model.save(sys.argv[2])
"""


def test_kill_while_saving_never_leaves_a_half_model(trained_model, tmp_path):
    for target in (tmp_path / "new-model", trained_model.path):  # a new folder, and replacing an existing model
        before = sorted(p.name for p in target.iterdir()) if target.exists() else None
        result = subprocess.run([sys.executable, "-c", KILL_WHILE_SAVING, str(trained_model.path), str(target)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == -signal.SIGKILL, result.stderr
        if before is None:
            assert not target.exists()
        else:
            assert sorted(p.name for p in target.iterdir()) == before
            from zoolens.inference.model import Model

            Model.load(target)  # still the complete old model


EXTRACT_FOREVER = """
import sys, zoolens
from pathlib import Path
from zoolens.models.backbones import build_backbone
from zoolens.runtime.features import extract_features
backbone = build_backbone("mobilenet_v2")
paths = sorted(Path(sys.argv[1]).rglob("*.jpg"))
prep = backbone.info.preprocessing.at_size(64)
extract_features(paths, backbone, prep, batch_size=4, progress=False)  # killed from outside, mid-way
"""


def test_feature_cache_survives_a_kill_and_never_serves_a_corrupted_row(tiny_animals, tmp_path, monkeypatch):
    from zoolens.models.backbones import build_backbone
    from zoolens.runtime.features import extract_features

    env = {**os.environ, "ZOOLENS_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-c", EXTRACT_FOREVER, str(tiny_animals)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT
        databases = []
        while not databases:  # the first rows are committed: kill in the middle of the next writes
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() else ""
            databases = [d for d in (tmp_path / "cache").rglob("*.sqlite") if _rows(d) > 0]
            time.sleep(0.05)
    finally:
        kill_group(process)
    database = databases[0]

    monkeypatch.setenv("ZOOLENS_CACHE", str(tmp_path / "cache"))
    backbone = build_backbone("mobilenet_v2")
    prep = backbone.info.preprocessing.at_size(64)
    paths = sorted(tiny_animals.rglob("*.jpg"))
    honest = extract_features(paths, backbone, prep, batch_size=8, progress=False).features  # after the kill
    with sqlite3.connect(database) as db:
        digest, blob = db.execute("SELECT digest, vector FROM features LIMIT 1").fetchone()
        damaged = bytes(b ^ 0xFF for b in blob[:64]) + blob[64:]
        db.execute("UPDATE features SET vector = ? WHERE digest = ?", (damaged, digest))
    again = extract_features(paths, backbone, prep, batch_size=8, progress=False).features
    assert np.allclose(again, honest, atol=1e-5)  # the corrupted row was recomputed, not served
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT vector FROM features WHERE digest = ?", (digest,)).fetchone()[0] == blob


def _rows(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    except sqlite3.Error:
        return 0


_OPEN_CACHES_AT_ONCE = """
import sys, time
from pathlib import Path
from zoolens.files import open_cache_database
folder, me, processes, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for round_number in range(rounds):
    (folder / f"ready-{round_number}-{me}").touch()
    while len(list(folder.glob(f"ready-{round_number}-*"))) < processes:  # all start the round together
        time.sleep(0.001)
    try:
        open_cache_database(folder / f"round{round_number}.sqlite", "features (digest TEXT PRIMARY KEY)").close()
    except Exception as error:
        print(f"round {round_number}: {error!r}")
"""


def test_processes_opening_a_new_feature_cache_at_once_all_get_it(tmp_path):
    """DDP ranks open the same new cache file at the same moment; SQLite alone answered "database is locked"
    to some of them (before waiting was added: 6 of 120 opens in 20 rounds of 6 processes)."""
    processes = [subprocess.Popen([sys.executable, "-c", _OPEN_CACHES_AT_ONCE, str(tmp_path), str(n), "6", "50"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(6)]
    said = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), said
    assert [out for out, _ in said] == [""] * 6
