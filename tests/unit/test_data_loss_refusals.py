"""A user's files are never lost: an output folder that is not a zoolens model, a user's partial folder, an output
inside the data (or data inside the output) is refused before any work; zoolens' own checkpoint folder is marked and
removed; the output lock is released on failure and holds without flock. The runs that train, kill and race:
tests/integration/test_data_loss.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import copy_subset, tree_entries, tree_snapshot, users_partial

from zoolens.errors import ZoolensError
from zoolens.files import lock_path, output_lock, safe_folder_name
from zoolens.training.checkpoints import MARKER_FILE, TrainingCheckpoints, checkpoint_folder

FAST = dict(progress=False, image_size=64, epochs=5)  # frozen features at 64 px: a few seconds a run


def no_work(monkeypatch) -> None:
    """Fail the test if train() gets as far as reading the data: a refusal must come before any work."""
    from zoolens.training import trainer

    monkeypatch.setattr(trainer, "scan_folder", lambda *a, **k: pytest.fail("train() started working"))


def test_a_folder_that_is_not_a_model_is_refused_before_any_work(few_animals, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"precious")
    (tmp_path / "a-file").write_text("not a folder")
    before = tree_snapshot(tmp_path)
    with pytest.raises(ZoolensError, match="exists and is not a zoolens model"):
        zoolens.train(few_animals, precious, **FAST)
    with pytest.raises(ZoolensError, match="is a file, not a model folder"):
        zoolens.train(few_animals, tmp_path / "a-file", **FAST)
    assert tree_snapshot(tmp_path) == before and sorted(tree_entries(tmp_path)) == ["a-file", "precious",
                                                                               "precious/holiday.jpg"]


# ---- 2. <out>.partial is zoolens's only when it says so ------------------------------------------------
@pytest.mark.parametrize("resume", [False, True])
def test_a_users_partial_folder_is_never_removed_nor_reused(few_animals, tmp_path, resume, monkeypatch):
    import zoolens

    no_work(monkeypatch)
    mine = users_partial(tmp_path, progress=resume)
    before = tree_snapshot(mine)
    with pytest.raises(ZoolensError, match=r"mine\.partial: exists and is not a zoolens checkpoint") as caught:
        zoolens.train(few_animals, tmp_path / "mine", resume=resume, **FAST)
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


# ---- 3. output and data apart ------------------------------------------------------------------------
def test_out_inside_the_data_folder_is_refused_before_any_work(data_copy, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)

    before, listing = tree_snapshot(data_copy), tree_entries(data_copy)
    (tmp_path / "link").symlink_to(data_copy)
    for out in (data_copy / "model", data_copy / "cats" / "model", data_copy, tmp_path / "link" / "model"):
        with pytest.raises(ZoolensError, match="inside the data folder"):
            zoolens.train(data_copy, out, **FAST)
    assert tree_snapshot(data_copy) == before and tree_entries(data_copy) == listing  # not even a lock file


def test_data_inside_out_or_its_checkpoint_folder_is_refused(small_animals, tmp_path, monkeypatch):
    import zoolens

    no_work(monkeypatch)

    project = tmp_path / "project"  # a model folder that holds the photos it was trained on
    data_copy = copy_subset(small_animals, project / "animals", per_class=12)
    (project / "zoolens.json").write_text("{}")
    nested = copy_subset(small_animals, tmp_path / "m.partial" / "animals", per_class=12)
    before = tree_snapshot(tmp_path)
    with pytest.raises(ZoolensError, match="the data folder is inside `out`"):
        zoolens.train(data_copy, project, **FAST)
    with pytest.raises(ZoolensError, match="the data folder is inside `out`"):
        zoolens.train(nested, tmp_path / "m", **FAST)
    assert tree_snapshot(tmp_path) == before


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
