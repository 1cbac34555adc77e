"""Grouped splits (issue 31, item 6): the frames of one event (a burst of near-copies), and when asked of one camera
or site, never land in two parts of the train/validation/test split, nor in two folds of k-fold; class folders
keep the split they always had unless --group-by is given; a labels CSV's split column is the split."""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import shutil
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from zoolens.cli.program import main
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder
from zoolens.studies.kfold import fold_manifests

BURST = 3  # frames per burst
START = datetime(2021, 4, 11, 6, 0, 0)


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


@functools.lru_cache(maxsize=None)
def small(source: Path) -> Image.Image:
    with Image.open(source) as image:
        image.draft("RGB", (320, 320))
        image = image.convert("RGB")
    image.thumbnail((160, 160))
    return image


def save_frame(source: Path, target: Path, when: datetime, shift: int = 0) -> None:
    """A small near-copy of a real frame (shifted by `shift` pixels), its EXIF DateTime `when`."""
    image = small(source)
    if shift:
        image = image.crop((shift, 0, image.width, image.height))
    exif = Image.Exif()
    exif[0x0132] = when.strftime("%Y:%m:%d %H:%M:%S")
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, quality=90, exif=exif)


def burst_set(camera_traps: Path, root: Path, copies_of_each: int = 1, split=None, sites: int = 0) -> tuple[Path, dict]:
    """A labels CSV of real camera-trap bursts: each ena24 frame (7 species, 3 frames each) taken `copies_of_each`
    times, an hour apart, each time as a burst of BURST near-copies two seconds apart. Returns the CSV and each
    photo's burst (by construction, not by zoolens). `split(burst) -> [role per frame]` adds a split column, `sites` a
    site column (bursts dealt round that many sites)."""
    ena24 = camera_traps / "ena24"
    with open(ena24 / "labels.csv", newline="") as handle:
        labelled = [(row["filepath"], row["label"]) for row in csv.DictReader(handle)]
    rows, burst_of = [], {}
    burst = 0
    for _ in range(copies_of_each):
        for name, label in labelled:
            for k in range(BURST):
                relative = f"bursts/{burst:03d}-{k}.jpg"
                save_frame(ena24 / name, root / relative, START + timedelta(hours=burst, seconds=2 * k), shift=2 * k)
                row = [relative, label]
                if split:
                    row.append(split(burst)[k])
                if sites:
                    row.append(f"site-{burst % sites}")
                rows.append(row)
                burst_of[root / relative] = burst
            burst += 1
    header = ["filepath", "label"] + (["split"] if split else []) + (["site"] if sites else [])
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return root / "labels.csv", burst_of


def parts_of(manifest, key) -> dict:
    found = defaultdict(set)
    for sample, role in manifest.rows:
        found[key[sample.path]].add(role)
    return found


@pytest.fixture(scope="module")
def bursts(camera_traps, tmp_path_factory):
    return burst_set(camera_traps, tmp_path_factory.mktemp("bursts") / "traps", copies_of_each=2)


def test_a_labels_csv_is_split_by_event_so_no_burst_is_in_two_parts(bursts):
    labels, burst_of = bursts
    manifest = split_folder(scan_folder(labels))
    assert manifest.groups.by == "event" and manifest.groups.count() == len(set(burst_of.values())) == 42
    assert all(len(roles) == 1 for roles in parts_of(manifest, burst_of).values())
    shares = {role: len(manifest.part(role)) / len(manifest.rows) for role in ("train", "val", "test")}
    assert shares == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.08), shares
    assert "42 events" in manifest.grouping and "asked 70/10/20" in manifest.grouping
    for label in manifest.classes:  # every class trains, and the parts stay stratified
        assert any(s.label == label for s in manifest.part("train"))


def test_a_random_split_of_the_same_bursts_puts_bursts_in_two_parts(bursts):
    """What the grouping prevents, shown on the same photos: --group-by none is the photo-by-photo split."""
    labels, burst_of = bursts
    manifest = split_folder(scan_folder(labels), group_by="none")
    assert manifest.groups is None and manifest.grouping == ""
    assert sum(len(roles) > 1 for roles in parts_of(manifest, burst_of).values()) >= 10


def test_the_grouped_split_is_deterministic_and_follows_the_seed(bursts):
    labels, _ = bursts
    folder = scan_folder(labels)
    first, again, other = split_folder(folder, seed=0), split_folder(folder, seed=0), split_folder(folder, seed=1)
    assert first.rows == again.rows
    assert {s.path for s in other.part("test")} != {s.path for s in first.part("test")}


def test_a_longer_sequence_gap_joins_bursts_into_one_event(bursts):
    labels, burst_of = bursts
    manifest = split_folder(scan_folder(labels), sequence_gap=2 * 3600)  # bursts are an hour apart
    assert manifest.groups.count() == 1


def test_the_split_column_is_the_split_and_a_burst_across_it_is_warned_of(camera_traps, tmp_path, caplog):
    def split(burst):
        if burst == 0:
            return ["train", "train", "holdout"]  # zamba's name for the test part; a burst across two parts
        return [("train", "val", "test", "train")[burst % 4]] * BURST

    labels, burst_of = burst_set(camera_traps, tmp_path / "traps", split=split)
    with caplog.at_level(logging.WARNING, logger="zoolens"):
        manifest = split_folder(scan_folder(labels), "50/50", seed=4)  # ratios and seed do not move a photo
    given = {burst: [role.replace("holdout", "test") for role in split(burst)] for burst in set(burst_of.values())}
    for sample, role in manifest.rows:
        assert role == given[burst_of[sample.path]][int(sample.path.stem[-1])]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 events have photos in two parts of the given split (000-0.jpg" in warnings[0]


def test_group_by_site_keeps_each_site_in_one_part(camera_traps, tmp_path):
    labels, burst_of = burst_set(camera_traps, tmp_path / "traps", sites=7)
    folder = scan_folder(labels)
    manifest = split_folder(folder, group_by="site")
    assert manifest.groups.count() == 7
    assert all(len(roles) == 1 for roles in parts_of(manifest, folder.sites).values())
    assert len({role for _, role in manifest.rows}) >= 2


def test_group_by_camera_on_class_folders_keeps_each_camera_in_one_part(camera_traps, tmp_path):
    """In class folders a photo's camera is its folder below the class folder (DATA/<class>/<camera>/...)."""
    root = tmp_path / "classes"
    frames = sorted((camera_traps / "ena24").glob("*.jpg"))
    for n, frame in enumerate(frames):
        for k in range(2):
            save_frame(frame, root / ("fox" if n % 2 else "crow") / f"cam{n % 5}" / f"{n}-{k}.jpg",
                       START + timedelta(days=n, seconds=k))
    folder = scan_folder(root)
    manifest = split_folder(folder, group_by="camera")
    assert manifest.groups.count() == 5
    assert all(len(roles) == 1 for roles in parts_of(manifest, folder.cameras).values())


# The split of class folders as it was before grouped splits existed (commit c94559e): SHA-256 of every
# "path<TAB>label<TAB>role" row of `class_folders` below, per (ratios, seed).
SPLIT_BEFORE_GROUPING = {
    ("70/10/20", 0): "4f87bd99b7b9fdb5ed7a43013ae2f3a6cc0acfec538e8b14ecbfc0f8cc20fcd4",
    ("80/20", 3): "bfc92783cd4e8039b8ba163fa377bda71a69c2ac6e9a6de3ee3bff006f2bd39b",
    ("60/20/20", 7): "2bc871029c9fe920c86d94e9390037eb9571146d77ee3c1f5d76ea4f6e2664d7",
}


def class_folders(root: Path) -> Path:
    for label, n in {"a": 37, "b": 23, "c": 11}.items():
        for i in range(n):
            sub = root / label / (f"cam{i % 3}" if i % 2 else "")
            sub.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i, 0, 0)).save(sub / f"{i:04d}.png")
    return root


@pytest.mark.parametrize(("ratios", "seed"), sorted(SPLIT_BEFORE_GROUPING))
def test_class_folders_keep_their_split_exactly_without_group_by(ratios, seed, tmp_path):
    root = class_folders(tmp_path / "d")
    manifest = split_folder(scan_folder(root), ratios, seed)
    rows = "\n".join(f"{s.path.relative_to(root).as_posix()}\t{s.label}\t{role}" for s, role in manifest.rows)
    assert hashlib.sha256(rows.encode()).hexdigest() == SPLIT_BEFORE_GROUPING[ratios, seed]
    assert manifest.groups is None and manifest.grouping == ""


def test_class_folders_of_bursts_group_by_event_only_when_asked(bursts, tmp_path):
    labels, burst_of = bursts
    root = tmp_path / "classes"
    folder = scan_folder(labels)
    for sample in folder.samples:  # the same bursts as class folders
        target = root / sample.label / sample.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample.path, target)
    by_name = {root / s.label / s.path.name: burst_of[s.path] for s in folder.samples}
    classes = scan_folder(root)
    assert classes.source == "folders"
    loose = split_folder(classes)
    assert any(len(roles) > 1 for roles in parts_of(loose, by_name).values())
    grouped = split_folder(classes, group_by="event")
    assert grouped.groups.count() == 42
    assert all(len(roles) == 1 for roles in parts_of(grouped, by_name).values())


def test_kfold_folds_are_grouped_too(bursts):
    labels, burst_of = bursts
    manifest = split_folder(scan_folder(labels))
    folds = fold_manifests(manifest, 3, seed=0)
    validated = defaultdict(int)
    for fold in folds:
        assert all(len(roles) == 1 for roles in parts_of(fold, burst_of).values())
        for burst in {burst_of[s.path] for s in fold.part("val")}:
            validated[burst] += 1
    outside_test = {burst_of[s.path] for s in manifest.part("train") + manifest.part("val")}
    assert set(validated) == outside_test and set(validated.values()) == {1}  # each burst validates once


def test_camtrap_dp_frames_of_one_event_id_stay_together_across_a_time_gap(camera_traps, tmp_path):
    from helpers import package_with_blanks, read_rows, write_rows

    package = package_with_blanks(camera_traps, tmp_path / "package")
    header, media = read_rows(package / "media.csv")
    for row in media:  # the heron burst's last five frames ten minutes later: two bursts by time, one eventID
        if row["filePath"].startswith("media/2021") and row["filePath"] >= "media/20210531082540-RCNX0036":
            row["timestamp"] = row["timestamp"].replace("T20:43:", "T20:53:")
    write_rows(package / "media.csv", header, media)
    folder = scan_folder(package)
    herons = [s.path for s in folder.samples if s.label == "Ardea"]
    manifest = split_folder(folder)
    assert len({manifest.groups.of[path] for path in herons}) == 1
    folder.event_links = {}  # without the eventID, the times make two events of them
    assert len({split_folder(folder).groups.of[path] for path in herons}) == 2


# ---- the command line ---------------------------------------------------------------------------------
def test_data_split_says_how_it_grouped(bursts, tmp_path, capsys):
    labels, burst_of = bursts
    out = tmp_path / "split.csv"
    assert main(["data", "split", str(labels), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "split grouped by event: 42 events" in printed
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    roles = defaultdict(set)
    for row in rows:
        roles[burst_of[labels.parent / row["path"]]].add(row["split"])
    assert len(rows) == 126 and all(len(found) == 1 for found in roles.values())


def test_group_by_site_without_sites_is_one_line(bursts, tmp_path, capsys):
    labels, _ = bursts
    assert main(["data", "split", str(labels), "--group-by", "site", "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("zoolens: error: --group-by site: ") and "names no sites" in err


def test_group_by_with_a_split_manifest_is_refused(bursts, tmp_path, capsys):
    labels, _ = bursts
    assert main(["train", str(labels), "--out", str(tmp_path / "m"), "--split", str(tmp_path / "s.csv"),
                 "--group-by", "event"]) == 2
    assert "--group-by: not with --split MANIFEST.csv" in capsys.readouterr().err


def test_kfold_takes_the_grouping_options(bursts, tmp_path, capsys):
    labels, _ = bursts
    assert main(["kfold", str(labels), "--out", str(tmp_path / "folds"), "--group-by", "site"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("zoolens: error: --group-by site: ") and "names no sites" in err


def test_a_class_whose_groups_were_all_held_out_gets_its_smallest_group_back_in_train(camera_traps, tmp_path):
    """Two cameras, one species each: whole cameras go to one part, and neither class is left without training."""
    from helpers import package_with_blanks

    folder = scan_folder(package_with_blanks(camera_traps, tmp_path / "package"))
    manifest = split_folder(folder, group_by="camera")
    assert manifest.groups.count() == 2
    assert {s.label for s in manifest.part("train")} == {"Ardea", "blank"}
