"""The user's own folders are never lost nor written into: the findings of the second hardening pass
(docs/hardening.md, "Output folders"), each with the input that broke it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import copy_subset, tree_entries, tree_snapshot, users_partial

from zoolens.errors import ZoolensError
from zoolens.files import lock_path, output_lock, safe_folder_name

FAST = dict(progress=False, image_size=64, epochs=5)  # frozen features at 64 px: a few seconds a run
OWNED = {"zoolens.json", "model.safetensors", "open_set.safetensors", "split.csv", "history.csv",
         "training_curves.png", "evaluation"}


def run_zoolens(*args, timeout=300):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def assert_one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("zoolens: error: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def add_user_files(folder: Path) -> None:
    (folder / "notes.txt").write_text("what I changed, and why\n")
    (folder / "my results" / "deep").mkdir(parents=True)
    (folder / "my results" / "deep" / "table.csv").write_bytes(os.urandom(1000))
    (folder / ".my-hidden").write_text("mine")
    (folder / "results.parquet").mkdir()  # another zoolens command's output, kept beside the model
    (folder / "results.parquet" / "part-00000.parquet").write_bytes(b"PAR1")


def users_part(snapshot: dict) -> dict:
    return {k: v for k, v in snapshot.items() if k.split(os.sep)[0] not in OWNED}


# ---- 1. replacing a model keeps everything else in its folder ------------------------------------------
def test_training_again_into_a_model_folder_replaces_only_zoolens_files(few_animals, tmp_path):
    import zoolens

    out = tmp_path / "model"
    zoolens.train(few_animals, out, seed=0, **FAST)
    add_user_files(out)
    (out / "evaluation" / "open_set_metrics.json").write_text("{}")  # from an earlier `zoolens evaluate --unknown`
    first = json.loads((out / "zoolens.json").read_text())
    mine = users_part(tree_snapshot(out))
    assert len(mine) == 4

    zoolens.train(few_animals, out, seed=1, **FAST)  # the probe: this deleted notes.txt and the rest
    assert users_part(tree_snapshot(out)) == mine  # byte-identical, mtimes too
    assert (out / "my results" / "deep").is_dir()
    assert json.loads((out / "zoolens.json").read_text())["training"]["seed"] == 1 != first["training"]["seed"]
    assert {p.name for p in out.iterdir()} >= OWNED
    assert not (out / "evaluation" / "open_set_metrics.json").exists()  # the old model's evaluation went with it
    zoolens.Model.load(out)
    left = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    assert left == [], left  # no staging folder, no lock file, no checkpoint folder


KILL_MID_SWAP = """
import os, signal, sys, zoolens
model = zoolens.Model.load(sys.argv[1])
real_replace = os.replace
def replace_then_die(source, target, *args, **kwargs):
    real_replace(source, target, *args, **kwargs)
    if str(target).endswith(os.path.join("old", "zoolens.json")):
        os.kill(os.getpid(), signal.SIGKILL)  # the old zoolens.json moved out, nothing else yet
os.replace = replace_then_die
model.save(sys.argv[2])
"""


def test_a_kill_in_the_middle_of_the_swap_leaves_no_half_model_and_keeps_the_users_files(trained_model, few_animals,
                                                                                         tmp_path):
    import zoolens

    out = tmp_path / "model"
    shutil.copytree(trained_model.path, out)
    add_user_files(out)
    mine = users_part(tree_snapshot(out))
    killed = subprocess.run([sys.executable, "-c", KILL_MID_SWAP, str(trained_model.path), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "zoolens.json").exists()  # never the old description over new weights
    with pytest.raises(ZoolensError, match="interrupted; train it again"):
        zoolens.Model.load(out)
    zoolens.train(few_animals, out, **FAST)  # accepted: zoolens knows it was its own model being replaced
    zoolens.Model.load(out)
    assert users_part(tree_snapshot(out)) == mine
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the killed save's leftovers are cleared


# ---- 2. <out>.partial is zoolens's only when it says so ------------------------------------------------
def test_a_cli_run_refuses_the_users_partial_folder_in_one_line(few_animals, tmp_path):
    mine = users_partial(tmp_path)
    before = tree_snapshot(mine)
    result = run_zoolens("train", few_animals, "--out", tmp_path / "mine", "--image-size", "64", "--quiet")
    assert_one_line_error(result, str(mine))
    assert tree_snapshot(mine) == before


def test_cli_train_into_its_data_folder_is_one_line(data_copy):
    before, listing = tree_snapshot(data_copy), tree_entries(data_copy)
    result = run_zoolens("train", data_copy, "--out", data_copy / "model", "--image-size", "64", "--quiet")
    assert_one_line_error(result, "inside the data folder", str(data_copy / "model"))
    assert tree_snapshot(data_copy) == before and tree_entries(data_copy) == listing


@pytest.mark.parametrize("command", [["kfold", "--k", "2"], ["tune", "--trials", "1"],
                                     ["study", "frozen-vs-unfrozen", "--budget", "small"]])
def test_studies_refuse_an_output_inside_their_data_before_writing(data_copy, command):
    before, listing = tree_snapshot(data_copy), tree_entries(data_copy)
    if command[0] == "study":
        result = run_zoolens(command[0], command[1], "--data", data_copy, "--out", data_copy / "runs", *command[2:])
    else:
        result = run_zoolens(command[0], data_copy, "--out", data_copy / "runs", *command[1:])
    assert_one_line_error(result, "inside the data folder", str(data_copy / "runs"))
    assert tree_snapshot(data_copy) == before and tree_entries(data_copy) == listing


# ---- 4. one run per output folder --------------------------------------------------------------------
# trains once the lock is free
def test_a_second_run_into_the_same_out_is_refused_while_the_first_holds_it(few_animals, tmp_path):
    import zoolens

    out = tmp_path / "model"
    with output_lock(out):
        with pytest.raises(ZoolensError, match=rf"another zoolens \(pid {os.getpid()}\) is writing") as caught:
            zoolens.train(few_animals, out, **FAST)
        assert "\n" not in str(caught.value)
        assert not out.exists()
    assert not lock_path(out).exists()  # removed at the end
    zoolens.train(few_animals, out, **FAST)  # free again
    assert not lock_path(out).exists()


HOLD_THE_LOCK = """
import sys, time
from zoolens.files import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_two_processes_one_out_and_a_dead_holders_lock_is_taken_over(few_animals, tmp_path):
    import zoolens

    out = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = run_zoolens("train", few_animals, "--out", out, "--image-size", "64", "--quiet")
        assert_one_line_error(second, f"another zoolens (pid {holder.pid}) is writing", str(out))
        assert not out.exists()
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, naming a dead pid
        holder.wait(timeout=30)
    assert lock_path(out).read_text().split() == [str(holder.pid)]
    zoolens.train(few_animals, out, **FAST)  # a stale lock does not stop the next run
    zoolens.Model.load(out)
    assert not lock_path(out).exists()


# ---- 5. class names from a model file never leave the --sort-into folder --------------------------------
def hostile_model(trained_model, tmp_path: Path, classes: list[str]) -> Path:
    model = tmp_path / "hostile-model"
    shutil.copytree(trained_model.path, model)
    meta = json.loads((model / "zoolens.json").read_text())
    assert len(classes) == len(meta["classes"])
    meta["classes"] = classes
    (model / "zoolens.json").write_text(json.dumps(meta))
    return model


@pytest.fixture
def camera(small_animals, tmp_path) -> Path:
    return copy_subset(small_animals, tmp_path / "camera", per_class=3)


@pytest.mark.parametrize("classes", [
    ["../../../escaped", "/ABSOLUTE/x", ".."],
    ["a/../../../b", ".hidden", "nul\x00byte\\..\\..\\win"],
], ids=["dotdot-absolute", "nested-hidden-nul"])
def test_hostile_class_names_never_write_outside_the_sort_folder(trained_model, camera, tmp_path, classes):
    import pyarrow.parquet as pq

    from zoolens.inference.batch import predict_folder

    classes = [name.replace("/ABSOLUTE", str(tmp_path / "absolute")) for name in classes]
    model = hostile_model(trained_model, tmp_path, classes)
    job = tmp_path / "job"
    target = job / "deep" / "sorted"  # "../../../escaped" from here is tmp_path/escaped
    before_files, before_entries = tree_snapshot(tmp_path), tree_entries(tmp_path)
    predict_folder(model, camera, job / "r.parquet", sort_into=target, open_set="off", workers=0, progress=False)

    outside = {k: v for k, v in tree_entries(tmp_path).items() if not k.startswith("job")}
    assert outside == before_entries  # no folder, file or link appeared anywhere else
    assert {k: v for k, v in tree_snapshot(tmp_path).items() if not k.startswith("job")} == before_files
    labels = set(pq.read_table(job / "r.parquet").column("label").to_pylist())
    assert len(labels) >= 2 and labels <= set(classes)  # the hostile names were really used
    made = {p.name for p in target.iterdir()}
    assert made == {safe_folder_name(label) for label in labels}
    for placed in target.rglob("*"):
        assert Path(os.path.realpath(placed.parent)).is_relative_to(os.path.realpath(target))
        assert placed.is_dir() == (placed.parent == target)  # class folders, then photos, nothing deeper
    assert not any(name.startswith(".") or name in ("", "..") for name in made)


def test_ordinary_class_names_stay_as_they_are(trained_model, camera, tmp_path):
    from zoolens.inference.batch import predict_folder

    classes = ["chats noirs", "chiens é", "大熊猫"]
    model = hostile_model(trained_model, tmp_path, classes)
    target = tmp_path / "sorted"
    predict_folder(model, camera, tmp_path / "r.parquet", sort_into=target, open_set="off", workers=0,
                   progress=False)
    assert {p.name for p in target.iterdir()} <= set(classes) and len(list(target.iterdir())) >= 2


def test_a_class_folder_that_is_a_link_out_of_the_target_is_refused(trained_model, camera, tmp_path):
    from zoolens.inference.batch import predict_folder

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "sorted"
    target.mkdir()
    for name in trained_model.classes:
        (target / name).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ZoolensError, match="leads out of `sort_into`"):
        predict_folder(trained_model, camera, tmp_path / "r.parquet", sort_into=target, open_set="off",
                       workers=0, progress=False)
    assert list(elsewhere.iterdir()) == []


def test_sort_folder_that_holds_the_photo_folder_is_refused(trained_model, small_animals, tmp_path):
    from zoolens.inference.batch import predict_folder

    photos = copy_subset(small_animals, tmp_path / "sorted" / "cats", per_class=2)  # a class folder's name
    before = tree_snapshot(photos)
    with pytest.raises(ZoolensError, match="the photo folder is inside `sort_into`"):
        predict_folder(trained_model, photos, tmp_path / "r.parquet", sort_into=tmp_path / "sorted",
                       workers=0, progress=False)
    assert tree_snapshot(photos) == before
