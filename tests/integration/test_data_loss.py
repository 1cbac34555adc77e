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
from helpers import copy_subset, tree_snapshot

from zoolens.errors import ZoolensError
from zoolens.files import lock_path, output_lock, safe_folder_name
from zoolens.training.checkpoints import MARKER_FILE, PROGRESS_FILE, TrainingCheckpoints, checkpoint_folder

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


def no_work(monkeypatch) -> None:
    """Fail the test if train() gets as far as reading the data: a refusal must come before any work."""
    from zoolens.training import trainer

    monkeypatch.setattr(trainer, "scan_folder", lambda *a, **k: pytest.fail("train() started working"))


def entries(root: Path) -> dict[str, str]:
    """Every path below root, folders and links included (tree_snapshot lists files only)."""
    return {str(p.relative_to(root)): "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def tiny(small_animals, tmp_path_factory) -> Path:
    return copy_subset(small_animals, tmp_path_factory.mktemp("tiny") / "animals", per_class=12)


@pytest.fixture
def data(tiny, tmp_path) -> Path:
    """A private copy, for the tests that try to write into the data folder."""
    return copy_subset(tiny, tmp_path / "photos", per_class=12)


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
@pytest.mark.slow
def test_training_again_into_a_model_folder_replaces_only_zoolens_files(tiny, tmp_path):
    import zoolens

    out = tmp_path / "model"
    zoolens.train(tiny, out, seed=0, **FAST)
    add_user_files(out)
    (out / "evaluation" / "open_set_metrics.json").write_text("{}")  # from an earlier `zoolens evaluate --unknown`
    first = json.loads((out / "zoolens.json").read_text())
    mine = users_part(tree_snapshot(out))
    assert len(mine) == 4

    zoolens.train(tiny, out, seed=1, **FAST)  # the probe: this deleted notes.txt and the rest
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


@pytest.mark.slow
def test_a_kill_in_the_middle_of_the_swap_leaves_no_half_model_and_keeps_the_users_files(trained_model, tiny,
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
    zoolens.train(tiny, out, **FAST)  # accepted: zoolens knows it was its own model being replaced
    zoolens.Model.load(out)
    assert users_part(tree_snapshot(out)) == mine
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the killed save's leftovers are cleared


def test_a_folder_that_is_not_a_model_is_refused_before_any_work(tiny, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"precious")
    (tmp_path / "a-file").write_text("not a folder")
    before = tree_snapshot(tmp_path)
    with pytest.raises(ZoolensError, match="exists and is not a zoolens model"):
        zoolens.train(tiny, precious, **FAST)
    with pytest.raises(ZoolensError, match="is a file, not a model folder"):
        zoolens.train(tiny, tmp_path / "a-file", **FAST)
    assert tree_snapshot(tmp_path) == before and sorted(entries(tmp_path)) == ["a-file", "precious",
                                                                               "precious/holiday.jpg"]


# ---- 2. <out>.partial is zoolens's only when it says so ------------------------------------------------
def users_partial(tmp_path: Path, progress: bool = False) -> Path:
    mine = tmp_path / "mine.partial"
    (mine / "drafts").mkdir(parents=True)
    (mine / "drafts" / "essay.txt").write_text("three weeks of work")
    if progress:  # looks like a checkpoint, but zoolens did not make it
        (mine / PROGRESS_FILE).write_text(json.dumps({"fingerprint": {}, "phases": {}}))
    return mine


@pytest.mark.parametrize("resume", [False, True])
def test_a_users_partial_folder_is_never_removed_nor_reused(tiny, tmp_path, resume, monkeypatch):
    import zoolens

    no_work(monkeypatch)
    mine = users_partial(tmp_path, progress=resume)
    before = tree_snapshot(mine)
    with pytest.raises(ZoolensError, match=r"mine\.partial: exists and is not a zoolens checkpoint") as caught:
        zoolens.train(tiny, tmp_path / "mine", resume=resume, **FAST)
    assert "\n" not in str(caught.value)
    assert tree_snapshot(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.partial"]  # no model, no lock left


@pytest.mark.parametrize("resume", [False, True])
def test_checkpoints_start_refuses_a_partial_folder_without_the_marker(tmp_path, resume):
    """The same guard one layer down, where the folder is removed or read."""
    mine = users_partial(tmp_path, progress=resume)
    before = tree_snapshot(mine)
    with pytest.raises(ZoolensError, match="not a zoolens checkpoint"):
        TrainingCheckpoints.start(tmp_path / "mine", {"lr": 1}, resume=resume)
    assert tree_snapshot(mine) == before


def test_zoolens_own_checkpoint_folder_is_marked_reused_and_removed(tmp_path):
    out = tmp_path / "model"
    TrainingCheckpoints.start(out, {"lr": 1}, resume=False)
    assert (checkpoint_folder(out) / MARKER_FILE).is_file()
    again, note = TrainingCheckpoints.start(out, {"lr": 1}, resume=True)
    assert note.startswith("resuming from")
    again.remove()
    assert not checkpoint_folder(out).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left either


@pytest.mark.slow
def test_a_cli_run_refuses_the_users_partial_folder_in_one_line(tiny, tmp_path):
    mine = users_partial(tmp_path)
    before = tree_snapshot(mine)
    result = run_zoolens("train", tiny, "--out", tmp_path / "mine", "--image-size", "64", "--quiet")
    assert_one_line_error(result, str(mine))
    assert tree_snapshot(mine) == before


# ---- 3. output and data apart ------------------------------------------------------------------------
def test_out_inside_the_data_folder_is_refused_before_any_work(data, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)

    before, listing = tree_snapshot(data), entries(data)
    (tmp_path / "link").symlink_to(data)
    for out in (data / "model", data / "cats" / "model", data, tmp_path / "link" / "model"):
        with pytest.raises(ZoolensError, match="inside the data folder"):
            zoolens.train(data, out, **FAST)
    assert tree_snapshot(data) == before and entries(data) == listing  # not even a lock file


def test_data_inside_out_or_its_checkpoint_folder_is_refused(small_animals, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)

    project = tmp_path / "project"  # a model folder that holds the photos it was trained on
    data = copy_subset(small_animals, project / "animals", per_class=12)
    (project / "zoolens.json").write_text("{}")
    nested = copy_subset(small_animals, tmp_path / "m.partial" / "animals", per_class=12)
    before = tree_snapshot(tmp_path)
    with pytest.raises(ZoolensError, match="the data folder is inside `out`"):
        zoolens.train(data, project, **FAST)
    with pytest.raises(ZoolensError, match="the data folder is inside `out`"):
        zoolens.train(nested, tmp_path / "m", **FAST)
    assert tree_snapshot(tmp_path) == before


@pytest.mark.slow
def test_cli_train_into_its_data_folder_is_one_line(data):
    before, listing = tree_snapshot(data), entries(data)
    result = run_zoolens("train", data, "--out", data / "model", "--image-size", "64", "--quiet")
    assert_one_line_error(result, "inside the data folder", str(data / "model"))
    assert tree_snapshot(data) == before and entries(data) == listing


@pytest.mark.slow
@pytest.mark.parametrize("command", [["kfold", "--k", "2"], ["tune", "--trials", "1"],
                                     ["study", "frozen-vs-unfrozen", "--budget", "small"]])
def test_studies_refuse_an_output_inside_their_data_before_writing(data, command):
    before, listing = tree_snapshot(data), entries(data)
    if command[0] == "study":
        result = run_zoolens(command[0], command[1], "--data", data, "--out", data / "runs", *command[2:])
    else:
        result = run_zoolens(command[0], data, "--out", data / "runs", *command[1:])
    assert_one_line_error(result, "inside the data folder", str(data / "runs"))
    assert tree_snapshot(data) == before and entries(data) == listing


# ---- 4. one run per output folder --------------------------------------------------------------------
@pytest.mark.slow  # trains once the lock is free
def test_a_second_run_into_the_same_out_is_refused_while_the_first_holds_it(tiny, tmp_path):
    import zoolens

    out = tmp_path / "model"
    with output_lock(out):
        with pytest.raises(ZoolensError, match=rf"another zoolens \(pid {os.getpid()}\) is writing") as caught:
            zoolens.train(tiny, out, **FAST)
        assert "\n" not in str(caught.value)
        assert not out.exists()
    assert not lock_path(out).exists()  # removed at the end
    zoolens.train(tiny, out, **FAST)  # free again
    assert not lock_path(out).exists()


HOLD_THE_LOCK = """
import sys, time
from zoolens.files import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_two_processes_one_out_and_a_dead_holders_lock_is_taken_over(tiny, tmp_path):
    import zoolens

    out = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = run_zoolens("train", tiny, "--out", out, "--image-size", "64", "--quiet")
        assert_one_line_error(second, f"another zoolens (pid {holder.pid}) is writing", str(out))
        assert not out.exists()
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, naming a dead pid
        holder.wait(timeout=30)
    assert lock_path(out).read_text().split() == [str(holder.pid)]
    zoolens.train(tiny, out, **FAST)  # a stale lock does not stop the next run
    zoolens.Model.load(out)
    assert not lock_path(out).exists()


def test_the_lock_is_released_when_training_fails(tmp_path):
    import zoolens

    out = tmp_path / "model"
    with pytest.raises(ZoolensError):
        zoolens.train(tmp_path / "no-such-data", out, **FAST)
    assert not lock_path(out).exists()
    with output_lock(out):  # and can be taken again
        pass


def test_without_flock_the_lock_file_alone_still_keeps_one_writer(tmp_path, monkeypatch):
    """Some network and FUSE file systems refuse flock: the O_EXCL lock file, a dead pid's taken over."""
    import errno
    import fcntl

    import zoolens.files as files

    class NoFlock:
        LOCK_EX, LOCK_NB = fcntl.LOCK_EX, fcntl.LOCK_NB

        @staticmethod
        def flock(fd, operation):
            raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(files, "fcntl", NoFlock)
    out = tmp_path / "model"
    with output_lock(out):
        with pytest.raises(ZoolensError, match=rf"another zoolens \(pid {os.getpid()}\)"):
            with output_lock(out):
                pass
    assert not lock_path(out).exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(out).write_text(f"{dead.pid}\n")
    with output_lock(out):
        assert lock_path(out).read_text().split() == [str(os.getpid())]


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
    before_files, before_entries = tree_snapshot(tmp_path), entries(tmp_path)
    predict_folder(model, camera, job / "r.parquet", sort_into=target, open_set="off", workers=0, progress=False)

    outside = {k: v for k, v in entries(tmp_path).items() if not k.startswith("job")}
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


def test_safe_folder_name():
    for ordinary in ("cats", "golden retriever", "chat noir é", "熊猫", "not sure", "none of these", "a.b",
                     "caf\udce9"):  # the last: a non-UTF-8 folder name as Python reads it
        assert safe_folder_name(ordinary) == ordinary
    hostile = ["", ".", "..", ".hidden", "a/b", "a\\b", "/abs/path", "../../../x", "x\x00y", "tab\there",
               "line\nbreak", "\x1b[31mred", "\ud800", "a" * 300, "é" * 200]
    made = [safe_folder_name(name) for name in hostile]
    assert len(set(made)) == len(made)  # two changed names never share a folder
    for name in made:
        assert "/" not in name and "\\" not in name and not name.startswith(".") and name not in ("", ".", "..")
        assert not any(ord(c) < 32 or ord(c) == 127 for c in name)
        assert len(os.fsencode(name)) <= 255
    assert safe_folder_name("a/b") != safe_folder_name("a_b") == "a_b"
    assert safe_folder_name(None) == safe_folder_name("")  # no label at all: one folder, "_ (…)"


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
