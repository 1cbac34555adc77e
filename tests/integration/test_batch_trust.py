"""The batch job's results folder is data to check, not to trust (issue 32): a part planted there never makes
`--sort-into` place or read a file outside the photo folder; a resumed job holds one row per photo, answering
again a photo whose content changed and forgetting one that is gone; a killed job leaves no shared memory."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import copy_subset, tree_snapshot

OUTSIDE_LINK = "a link to a file outside the photo folder (not read)"


@pytest.fixture
def photos(small_animals, tmp_path) -> Path:
    """3 real photos of each class, in class folders (the walk's sub-folders)."""
    return copy_subset(small_animals, tmp_path / "ds", per_class=3)


@pytest.fixture
def secret(small_animals, tmp_path) -> Path:
    """A file outside the photo folder that must never be read or placed (a real photo, so it could be)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(sorted((small_animals / "cats").iterdir())[-1], outside / "secret.jpg")
    (outside / "shadow").write_text("root:$6$secret:19000:0:99999:7:::\n")
    return outside / "secret.jpg"


def photo_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.jpg") if p.is_file() and not p.is_symlink())


def rows_of(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()


def plant_part(out: Path, rows: list[dict], name: str = "part-09999.parquet") -> None:
    """A part written by someone else, with exactly the columns zoolens writes."""
    schema = pq.read_schema(sorted(out.glob("part-*.parquet"))[0])
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema}
    pq.write_table(pa.table(columns, schema=schema), out / name)


def planted_row(path, folder, source: Path, label="cats") -> dict:
    status = source.stat()
    return {"path": str(path), "folder": folder, "verdict": "class", "label": label, "confidence": 0.99,
            "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def test_a_planted_part_never_places_or_counts_files_outside_the_photo_folder(trained_model, photos, secret,
                                                                              tmp_path, capsys):
    from zoolens.cli.program import main
    from zoolens.inference.batch import predict_folder

    (photos / "cats" / "link-out.jpg").symlink_to(secret)  # a link inside the folder to a file outside it
    (photos / "cats" / "link-in.jpg").symlink_to(photos / "dogs" / sorted(os.listdir(photos / "dogs"))[0])
    out, target = tmp_path / "res.parquet", tmp_path / "S"
    predict_folder(trained_model, photos, out, workers=0, progress=False)
    cat = photo_files(photos / "cats")[0]
    plant_part(out, [
        planted_row(secret, "cats", secret),  # a file outside, shown as a cat
        planted_row(secret.parent / "shadow", ".", secret.parent / "shadow"),  # the /etc/shadow of the issue
        planted_row(photos / "x/../../outside/secret.jpg", "x/../../outside", secret),  # a folder leading out
        planted_row(photos / "x/../.." / "secret.jpg", "x/../..", secret),
        planted_row(cat, "cats", cat, label="../../escape"),  # a real photo, an answer the model never gives
    ])
    outside_before = tree_snapshot(secret.parent)
    photos_before = tree_snapshot(photos)
    capsys.readouterr()

    assert main(["predict", str(trained_model.path), str(photos), "--out", str(out), "--sort-into", str(target),
                 "--copy"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "not this job's answers" in line]
    assert warnings == [f"{out}: 5 rows were not this job's answers for photos inside {photos} (another path, or "
                        "an answer this model does not give); not used, and removed"], err

    secret_bytes = {secret.read_bytes(), (secret.parent / "shadow").read_bytes()}
    placed = [p for p in target.rglob("*") if p.is_file()]
    own = {p.read_bytes() for p in photo_files(photos)}
    assert placed and all(p.read_bytes() in own and p.read_bytes() not in secret_bytes for p in placed)
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert {p.name for p in target.iterdir()} <= {*trained_model.classes, "not sure", "none of these"}
    assert len(placed) == len(photo_files(photos)) + 1  # every photo, and link-in.jpg's dog a second time
    assert tree_snapshot(secret.parent) == outside_before and tree_snapshot(photos) == photos_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S", "ds", "outside", "res-summary.csv", "res.parquet"]

    rows = rows_of(out)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(str(p) for p in [*photo_files(photos), photos / "cats" / "link-in.jpg",
                                                     photos / "cats" / "link-out.jpg"])
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["link-out.jpg"]["error"] == OUTSIDE_LINK and by_name["link-in.jpg"]["error"] is None
    assert by_name[cat.name]["label"] in trained_model.classes
    summary = (tmp_path / "res-summary.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in summary[1:]] == ["cats", "dogs", "panda", "(all)"]
    assert summary[-1].split(",")[1] == str(len(rows))


@pytest.mark.parametrize("copy", [False, True])
def test_sorting_refuses_a_photo_replaced_by_a_link_out_or_a_fifo_after_the_walk(trained_model, photos, secret,
                                                                                 tmp_path, caplog, copy):
    """Sorting checks each photo again when it places it: the results may be older than the folder."""
    from zoolens.inference.batch import ResultsDataset, predict_folder
    from zoolens.inference.batch.sorting import sort_into

    out, target = tmp_path / "r.parquet", tmp_path / "S"
    predict_folder(trained_model, photos, out, workers=0, progress=False)
    linked, fifo = photo_files(photos / "cats")[:2]
    linked.unlink()
    linked.symlink_to(secret)
    fifo.unlink()
    os.mkfifo(fifo)
    settings = json.loads((out / "_zoolens.json").read_text())
    counts = sort_into(ResultsDataset(out, settings, photos), target, copy)
    assert counts["refused"] == 2 and counts["placed"] == len(photo_files(photos))
    said = [r.getMessage() for r in caplog.records if "not placed" in r.getMessage()]
    assert said == [f"{out}: 2 rows name no photo of {photos} (a link out of it, not a regular file, or not a row "
                    "this job wrote); not placed"]
    placed = [p for p in target.rglob("*") if not p.is_dir()]
    assert not any(p.name in (linked.name, fifo.name) for p in placed)
    assert not any(p.is_symlink() or p.read_bytes() == secret.read_bytes() for p in placed)


def other_class_photo(small_animals, photo: Path, label: str) -> Path:
    """A photo of another class than `label` (from the training photos: the model is sure of it)."""
    other = next(name for name in ("panda", "dogs", "cats") if name != label)
    return sorted((small_animals / other).iterdir())[-1]


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_resumed_job_answers_changed_photos_again_and_forgets_deleted_ones(trained_model, small_animals, photos,
                                                                             tmp_path, engine):
    from zoolens.inference.batch import predict_folder

    if engine == "ray":
        ray = pytest.importorskip("ray")
        ray.init(address="local", include_dashboard=False, logging_level="ERROR")  # one cluster for the 3 runs
    try:
        resumed_job_answers_changed_photos_again(trained_model, small_animals, photos, tmp_path, engine)
    finally:
        if engine == "ray":
            ray.shutdown()


def resumed_job_answers_changed_photos_again(trained_model, small_animals, photos, tmp_path, engine):
    from zoolens.inference.batch import predict_folder

    options = dict(workers=0, chunk_size=4, progress=False, engine=engine, concurrency=1)
    out = tmp_path / "r.parquet"
    first = predict_folder(trained_model, photos, out, **options)
    answers = {row["path"]: row["label"] for row in rows_of(out)}
    changed, deleted = photo_files(photos / "cats")[1], photo_files(photos / "dogs")[0]
    assert answers[str(changed)] == "cats"
    replacement = other_class_photo(small_animals, changed, "cats")
    shutil.copyfile(replacement, changed)  # a panda where the cat was: same path, other content
    deleted.unlink()

    second = predict_folder(trained_model, photos, out, **options)
    assert (first.predicted, second.predicted, second.skipped, second.removed) == (9, 1, 7, 2)
    rows = rows_of(out)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)) == 8 and str(deleted) not in paths
    assert {row["path"]: row["label"] for row in rows}[str(changed)] == replacement.parent.name
    assert sum(second.per_folder["dogs"].values()) == 2
    assert sum(sum(c.values()) for c in second.per_folder.values()) == 8
    assert second.summary_csv.read_text().splitlines()[-1].split(",")[:2] == ["(all)", "8"]

    parts = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    third = predict_folder(trained_model, photos, out, **options)
    assert (third.predicted, third.skipped, third.removed) == (0, 8, 0)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")} == parts  # nothing rewritten


def test_a_limited_run_still_keeps_one_row_per_photo(trained_model, small_animals, photos, tmp_path):
    """With --limit the rest of the walk is still looked at: a changed photo beyond the limit loses its old
    answer (it is not that photo's any more) and gets its new one from the next run; never two rows."""
    from zoolens.inference.batch import predict_folder

    options = dict(workers=0, chunk_size=2, progress=False)
    out = tmp_path / "r.parquet"
    predict_folder(trained_model, photos, out, **options)
    early, late = photo_files(photos / "cats")[0], photo_files(photos / "dogs")[0]  # photos follow both
    shutil.copyfile(other_class_photo(small_animals, early, "cats"), early)
    shutil.copyfile(sorted((small_animals / "cats").iterdir())[-1], late)
    limited = predict_folder(trained_model, photos, out, limit=1, **options)
    assert (limited.predicted, limited.skipped, limited.removed, limited.stopped_at_limit) == (1, 7, 2, True)
    paths = [row["path"] for row in rows_of(out)]
    assert len(paths) == len(set(paths)) == 8 and str(late) not in paths and str(early) in paths
    final = predict_folder(trained_model, photos, out, **options)
    assert (final.predicted, final.removed) == (1, 0)
    labels = {row["path"]: row["label"] for row in rows_of(out)}
    assert len(labels) == 9 and labels[str(late)] == "cats" and labels[str(early)] != "cats"


def test_duplicated_rows_of_one_photo_are_kept_once(trained_model, photos, tmp_path):
    from zoolens.inference.batch import predict_folder

    out = tmp_path / "r.parquet"
    predict_folder(trained_model, photos, out, workers=0, progress=False)
    shutil.copyfile(out / "part-00000.parquet", out / "part-00001.parquet")  # every row twice
    again = predict_folder(trained_model, photos, out, workers=0, progress=False)
    assert (again.predicted, again.removed) == (0, 9)
    paths = [row["path"] for row in rows_of(out)]
    assert len(paths) == len(set(paths)) == 9
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet"]  # the emptied part is removed


def process_group(group: int) -> list[int]:
    """The live processes of a process group (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def shm_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("psm_*")}


@pytest.mark.skipif(not Path("/dev/shm").is_dir() or not Path("/proc/self/stat").exists(), reason="Linux only")
def test_killing_the_whole_process_group_leaves_no_shared_memory(trained_model, animals3, tmp_path):
    """SIGKILL of the job's whole group (its workers too): no clean-up runs, and nothing may stay in /dev/shm."""
    photos = copy_subset(animals3, tmp_path / "many", per_class=400)  # several parts of 256: time to be killed
    out = tmp_path / "r.parquet"
    before = shm_segments()
    job = subprocess.Popen([sys.executable, "-m", "zoolens.cli", "predict", str(trained_model.path), str(photos),
                            "--out", str(out), "--workers", "2"], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("part-*.parquet")) and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        working = process_group(job.pid)
        assert job.poll() is None and len(working) >= 3, "the job should be decoding in its workers"  # + 2 workers
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    deadline = time.monotonic() + 10
    while process_group(job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_group(job.pid)
    assert shm_segments() - before == set()
