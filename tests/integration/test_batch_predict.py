"""Batch prediction of a folder tree (`zoolens predict MODEL DIR --out results.parquet`): same answers as
`Model.predict`, resumable after an interruption or a kill, sorting by links, per-folder summary."""

import gc
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import skimage.data
from PIL import Image
import pytest
from helpers import tree_snapshot, zoolens


@pytest.fixture
def camera_tree(small_animals, tmp_path) -> Path:
    """A camera-trap-like tree: photos in nested sub-folders, the same file names in two folders, two
    unusable files, and files that are not photos (ignored)."""
    root = tmp_path / "traps"
    layout = {"site1": 0, "site1/night": 3, "site2": 6}
    for folder, offset in layout.items():
        (root / folder).mkdir(parents=True)
        for class_dir in sorted(small_animals.iterdir()):
            for n, photo in enumerate(sorted(class_dir.iterdir())[offset : offset + 3]):
                shutil.copyfile(photo, root / folder / f"{class_dir.name}_{n}.jpg")  # same names in every folder
    (root / "site2" / "empty.jpg").write_bytes(b"")
    (root / "site1" / "night" / "text.jpg").write_text("not a photo")
    (root / "site2" / "notes.txt").write_text("battery changed")
    (root / "site2" / ".hidden.jpg").write_bytes(b"")
    return root


CAMERA_TRAP_COLUMNS = ("camera", "time", "time_read", "time_problem", "kind", "kind_confidence")


def camera_trap_cells(row: dict) -> tuple:
    return tuple(row[name] for name in CAMERA_TRAP_COLUMNS)


def add_camera_trap_frames(root: Path) -> list[Path]:
    """Two frames of the heron burst (EXIF times) in a Reconyx overflow folder, and a truncated frame."""
    from zoolens.data.shared import ensure_shared_dataset

    traps = ensure_shared_dataset("camera-traps")
    target = root / "site3" / "100RECNX"
    target.mkdir(parents=True)
    added = [target / photo.name for photo in sorted((traps / "camtrap-dp-example" / "media").glob("*.JPG"))[:2]]
    added.append(target / "truncated.jpg")
    for photo, source in zip(added, [*sorted((traps / "camtrap-dp-example" / "media").glob("*.JPG"))[:2],
                                     traps / "speciesnet-test" / "african_elephants_truncated_file.jpg"]):
        shutil.copyfile(source, photo)
    return added


def test_decoding_workers_and_this_process_record_the_same_time_and_camera(trained_model, camera_tree, tmp_path):
    from zoolens.inference.batch import predict_folder

    add_camera_trap_frames(camera_tree)
    predict_folder(trained_model, camera_tree, tmp_path / "here.parquet", workers=0, chunk_size=8, progress=False)
    predict_folder(trained_model, camera_tree, tmp_path / "workers.parquet", workers=2, chunk_size=8, progress=False)
    here = {row["path"]: row for row in read_results(tmp_path / "here.parquet")}
    workers = {row["path"]: row for row in read_results(tmp_path / "workers.parquet")}
    assert here.keys() == workers.keys()
    assert all(camera_trap_cells(row) == camera_trap_cells(here[path]) for path, row in workers.items())
    heron = here[str(camera_tree / "site3" / "100RECNX" / "20210531082538-RCNX0031.JPG")]
    assert (heron["camera"], heron["time_read"], heron["time_problem"]) == ("site3", "2021:04:11 20:43:09", None)
    assert here[str(camera_tree / "site1" / "night" / "cats_0.jpg")]["camera"] == "site1/night"
    assert here[str(camera_tree / "site2" / "empty.jpg")]["time_problem"].startswith("not read")


def photos_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.jpg") if not p.name.startswith("."))


def read_results(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()


def shared_memory_segments() -> set[str]:
    """POSIX shared memory now in use on this machine (Linux shows it as files in /dev/shm)."""
    shm = Path("/dev/shm")
    return {p.name for p in shm.iterdir()} if shm.is_dir() else set()


def middle_confidence(model, photos) -> float:
    """A threshold with photos on both sides of it, so "not sure" really happens."""
    confidences = sorted(p.confidence for p in model.predict(photos) if not p.error)
    return (confidences[len(confidences) // 4] + confidences[len(confidences) // 4 + 1]) / 2


def test_results_match_model_predict_and_a_rerun_redoes_nothing(trained_model, camera_tree, tmp_path, capsys,
                                                                caplog):
    from zoolens.inference.batch import predict_folder

    photos = photos_in(camera_tree)
    threshold = middle_confidence(trained_model, photos)
    out = tmp_path / "results.parquet"
    segments_before, frozen_before = shared_memory_segments(), gc.get_freeze_count()
    summary = predict_folder(trained_model, camera_tree, out, top_k=2, min_confidence=threshold, workers=2,
                             chunk_size=8, progress=False)
    assert shared_memory_segments() == segments_before  # the decoders' shared slots are given back
    assert gc.get_freeze_count() == frozen_before  # objects frozen for the workers' sake are freed again
    assert (summary.predicted, summary.skipped, summary.errors) == (len(photos), 0, 2)
    rows = read_results(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in photos)
    expected = {p.source: p for p in trained_model.predict(photos, top_k=2, min_confidence=threshold)}
    for row in rows:
        wanted = expected[row["path"]]
        assert row["error"] == wanted.error
        assert row["label"] == wanted.label
        if not wanted.error:
            assert row["top1_label"] == wanted.top[0][0] and row["top2_label"] == wanted.top[1][0]
            assert row["confidence"] == pytest.approx(wanted.confidence, abs=1e-4)
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert errors == {"empty.jpg": "empty file (0 bytes)", "text.jpg": "not an image file"}
    assert any(r["label"] is None and not r["error"] for r in rows), "some photos should be 'not sure'"
    said = "\n".join(record.getMessage() for record in caplog.records)  # logged: the CLI shows it on stderr
    for name, reason in errors.items():  # each unusable file is also named as the run goes
        assert any(name in line and reason in line for line in said.splitlines()), (name, said)

    parts_before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert len(parts_before) == -(-len(photos) // 8)
    capsys.readouterr()
    again = predict_folder(trained_model, camera_tree, out, top_k=2, min_confidence=threshold, progress=False)
    assert (again.predicted, again.skipped) == (0, len(photos))
    assert again.lines()[0] == f"{out}: predicted 0 photos (0 unusable), skipped {len(photos)} already done"
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")} == parts_before
    assert len(read_results(out)) == len(photos)


def test_no_shared_memory_decodes_in_process_and_says_so(trained_model, camera_tree, tmp_path, monkeypatch, caplog):
    """Where no shared mapping can be had (out of memory), the run decodes in its own process and says so."""
    import errno
    import multiprocessing.pool
    from types import SimpleNamespace

    from zoolens.inference import batch
    from zoolens.inference.batch import local

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(local, "mmap", SimpleNamespace(mmap=no_memory, MAP_SHARED=1, MAP_ANONYMOUS=32))
    monkeypatch.setattr(multiprocessing.pool, "Pool", None)  # no workers may start
    summary = batch.predict_folder(trained_model, camera_tree, tmp_path / "r.parquet", workers=2, chunk_size=8,
                                   progress=False)
    assert (summary.predicted, summary.errors) == (len(photos_in(camera_tree)), 2)
    said = caplog.text  # a warning of the library's log
    assert "no shared memory for the decoding workers (Cannot allocate memory); decoding in this process" in said
    assert sum(r["label"] is not None for r in read_results(tmp_path / "r.parquet")) == summary.predicted - 2


def test_a_batch_job_started_off_the_main_thread_starts_no_worker_process(trained_model, camera_tree, tmp_path,
                                                                         monkeypatch):
    """A process forked from a threaded one (a server's) can hang on a lock another thread held."""
    import multiprocessing.pool
    import threading

    from zoolens.inference import batch

    monkeypatch.setattr(multiprocessing.pool, "Pool", None)  # no workers may start (any start method)
    done = []
    thread = threading.Thread(target=lambda: done.append(batch.predict_folder(
        trained_model, camera_tree, tmp_path / "r.parquet", workers=2, chunk_size=8, progress=False)))
    thread.start()
    thread.join()
    assert len(done) == 1 and (done[0].predicted, done[0].errors) == (len(photos_in(camera_tree)), 2)


def test_summary_counts_each_folder(trained_model, camera_tree, tmp_path):
    import csv

    from zoolens.inference.batch import predict_folder

    segments_before = shared_memory_segments()
    summary = predict_folder(trained_model, camera_tree, tmp_path / "r.parquet", workers=0, progress=False)
    assert shared_memory_segments() == segments_before
    table = {row["folder"]: row for row in csv.DictReader(summary.summary_csv.open())}
    assert summary.summary_csv == tmp_path / "r-summary.csv"
    assert set(table) == {"site1", "site1/night", "site2", "(all)"}
    assert table["site1"]["photos"] == "9" and table["site1"]["errors"] == "0"
    assert table["site1/night"]["photos"] == "10" and table["site1/night"]["errors"] == "1"
    assert table["site2"]["errors"] == "1"
    assert int(table["(all)"]["photos"]) == len(photos_in(camera_tree))
    for row in table.values():  # every photo is counted once: a class, not sure, or an error
        parts = sum(int(row[name]) for name in [*trained_model.classes, "not sure", "errors"])
        assert parts == int(row["photos"])


def test_an_interrupted_run_resumes_with_one_row_per_photo(trained_model, camera_tree, tmp_path):
    from zoolens.inference.batch import predict_folder

    out = tmp_path / "results.parquet"
    first = predict_folder(trained_model, camera_tree, out, chunk_size=4, limit=6, workers=0, progress=False)
    assert first.stopped_at_limit and first.predicted == 6
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    (out / ".part-00002.parquet.tmp-99999").write_bytes(b"PAR1 half a part")  # a kill in the middle of a write
    second = predict_folder(trained_model, camera_tree, out, chunk_size=4, workers=0, progress=False)
    photos = photos_in(camera_tree)
    assert (second.predicted, second.skipped) == (len(photos) - 6, 6)
    paths = [r["path"] for r in read_results(out)]
    assert sorted(paths) == sorted(str(p) for p in photos)
    assert not list(out.glob(".*tmp*"))


_KILLED_RUN = """
import sys, time
from zoolens.inference import batch
write = batch.ResultsDataset.write_part
def slow_write(self, *args):
    written = write(self, *args)
    print(written.name, flush=True)
    time.sleep(30)  # killed here, after its first part
batch.ResultsDataset.write_part = slow_write
batch.predict_folder(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=5, workers=1, progress=False)
"""


def test_a_killed_run_leaves_only_whole_parts_and_resumes(trained_model, camera_tree, tmp_path):
    from zoolens.inference.batch import predict_folder

    out = tmp_path / "results.parquet"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED_RUN), str(trained_model.path),
                              str(camera_tree), str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "part-00000.parquet"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert len(read_results(out)) == 5
    resumed = predict_folder(trained_model, camera_tree, out, workers=0, progress=False)
    assert resumed.skipped == 5
    paths = [r["path"] for r in read_results(out)]
    assert len(paths) == len(set(paths)) == len(photos_in(camera_tree))


def test_sort_into_links_by_class_without_touching_the_photos(trained_model, camera_tree, tmp_path):
    from zoolens.inference.batch import predict_folder

    before = tree_snapshot(camera_tree)
    photos = photos_in(camera_tree)
    threshold = middle_confidence(trained_model, photos)
    target = tmp_path / "sorted"
    predict_folder(trained_model, camera_tree, tmp_path / "r.parquet", min_confidence=threshold,
                   sort_into=target, workers=0, progress=False)
    assert tree_snapshot(camera_tree) == before
    rows = read_results(tmp_path / "r.parquet")
    placed = sorted(p for p in target.rglob("*") if p.is_file())
    assert len(placed) == len(photos) - 2  # the two unusable files are listed in the results, not sorted
    assert {p.parent.name for p in placed} <= {*trained_model.classes, "not sure"}
    assert (target / "not sure").is_dir()
    for row in rows:
        if row["error"]:
            continue
        folder = target / (row["label"] or "not sure")
        matches = [p for p in folder.iterdir() if os.path.samefile(p, row["path"])]
        assert len(matches) == 1, row["path"]  # same-named photos of other folders did not overwrite it
    assert any("__" in p.name for p in placed)  # e.g. site1__cats_0.jpg beside cats_0.jpg

    predict_folder(trained_model, camera_tree, tmp_path / "r.parquet", min_confidence=threshold,
                   sort_into=target, workers=0, progress=False)
    assert sorted(p for p in target.rglob("*") if p.is_file()) == placed  # a re-run adds nothing
    assert tree_snapshot(camera_tree) == before


def test_cli_copy_summary_and_clear_errors(trained_model, camera_tree, tmp_path, capsys):
    from zoolens.cli import main

    out, target = tmp_path / "r.parquet", tmp_path / "sorted"
    result = zoolens("predict", trained_model.path, camera_tree, "--out", out, "--sort-into", target, "--copy",
                     "--top-k", "2", "--summary", tmp_path / "per-folder.csv")
    assert result.returncode == 0, result.stderr
    assert "site1/night" in result.stdout and "not sure" in result.stdout and "(all)" in result.stdout
    assert (tmp_path / "per-folder.csv").exists()
    copies = [p for p in target.rglob("*") if p.is_file()]
    assert copies and not any(p.is_symlink() or p.stat().st_nlink > 1 for p in copies)

    errors = {
        "other settings (top_k)": [trained_model.path, camera_tree, "--out", out, "--top-k", "3"],
        "--out is inside the photo folder": [trained_model.path, camera_tree, "--out", camera_tree / "r.parquet"],
        "no such folder": [trained_model.path, tmp_path / "nowhere", "--out", tmp_path / "x.parquet"],
        "--sort-into: only with --out": [trained_model.path, camera_tree, "--sort-into", target],
    }
    for message, args in errors.items():  # in this process: the same code path as the command, seconds faster
        assert main(["predict", *map(str, args)]) == 2
        error = capsys.readouterr().err
        assert error.startswith("zoolens: error: ") and error.count("\n") == 1 and message in error, error


def test_ray_engine_gives_the_same_results(trained_model, camera_tree, tmp_path):
    try:
        import ray
    except ImportError:
        from helpers import missing_tool

        missing_tool("Ray is not installed", "pip install 'zoolens[scale]' to test the ray engine")
    from zoolens.inference.batch import predict_folder

    with_exif = add_camera_trap_frames(camera_tree)
    (camera_tree / "people").mkdir()  # turned away and asked whether a person is there: the same pixels both ways
    for name in ("astronaut", "camera", "coffee"):
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(camera_tree / "people" / f"{name}.jpg")
    predict_folder(trained_model, camera_tree, tmp_path / "local.parquet", workers=0, progress=False)
    # The caller's own cluster: predict_folder uses it and leaves it running, for both runs.
    ray.init(address="local", include_dashboard=False, logging_level="ERROR")
    try:
        options = dict(engine="ray", concurrency=1, chunk_size=8, progress=False)
        first = predict_folder(trained_model, camera_tree, tmp_path / "ray.parquet", limit=20, **options)
        second = predict_folder(trained_model, camera_tree, tmp_path / "ray.parquet", **options)
    finally:
        ray.shutdown()
    assert (first.predicted, second.skipped, first.errors + second.errors) == (20, 20, 3)
    local = {row["path"]: row for row in read_results(tmp_path / "local.parquet")}
    rows = read_results(tmp_path / "ray.parquet")
    assert sorted(row["path"] for row in rows) == sorted(local)
    assert sum(local[str(path)]["time"] is not None for path in with_exif) == 2  # the EXIF times were read
    assert sum(row["reason"] == "a person" for row in rows) >= 2  # the astronaut and the camera man
    for row in rows:
        assert (row["label"], row["error"]) == (local[row["path"]]["label"], local[row["path"]]["error"])
        assert (row["verdict"], row["reason"]) == (local[row["path"]]["verdict"], local[row["path"]]["reason"])
        assert camera_trap_cells(row) == camera_trap_cells(local[row["path"]])
        if not row["error"]:
            assert row["confidence"] == pytest.approx(local[row["path"]]["confidence"], abs=1e-4)
