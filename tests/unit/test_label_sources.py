"""Camera-trap labels as a dataset (issue 31, item 6): a labels CSV (zamba's `filepath,label[,split][,site]`) and a
Camtrap DP package read through `scan_folder`, the one place every command reads a dataset; on the real files of
shared/datasets/camera-traps (ena24/labels.csv, speciesnet-test/labels.csv, the official Camtrap DP example).
The tests that train or start processes: tests/integration/test_label_sources_training.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import package_with_blanks, read_rows, tree_snapshot, write_csv, write_rows

from zoolens.cli.program import main
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder
from zoolens.errors import ZoolensError
from zoolens.evaluation.data_issues import OUTLIER, Flag

HERON_EVENT = "7245a2aa"  # the official example's one burst with local frames: ten frames of Ardea


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def write_labels(path: Path, rows: list[list[str]], header=("filepath", "label")) -> Path:
    return write_csv(path, rows, header)


# ---- labels CSV ---------------------------------------------------------------------------------------
def test_the_ena24_labels_csv_is_a_dataset_of_its_rows(camera_traps):
    labels = camera_traps / "ena24" / "labels.csv"
    folder = scan_folder(labels)
    _, rows = read_rows(labels)
    assert folder.source == "labels" and folder.given == labels and folder.root == labels.parent
    assert {(s.path.name, s.label) for s in folder.samples} == {(r["filepath"], r["label"]) for r in rows}
    assert len(folder.samples) == 21 and len(folder.classes) == 7 and folder.skipped == []
    assert folder.parts is None  # no split column: zoolens splits, by event (each ena24 frame has no time)
    manifest = split_folder(folder)
    assert manifest.groups.by == "event" and manifest.groups.count() == 21
    assert "split grouped by event" in manifest.grouping and "asked 70/10/20" in manifest.grouping


def test_speciesnet_labels_blank_human_and_vehicle_are_classes(camera_traps):
    folder = scan_folder(camera_traps / "speciesnet-test" / "labels.csv")
    assert {"blank", "human", "vehicle"} <= set(folder.classes)
    assert sum(s.label == "blank" for s in folder.samples) == 3


def test_a_formula_cell_names_the_photo_it_stands_for(camera_traps, tmp_path):
    """The spreadsheet rule: `'=x.jpg` (as zoolens writes a photo named =x.jpg) reads back as that name."""
    for name in ("=x.jpg", "a.jpg", "b.jpg"):
        shutil.copyfile(camera_traps / "ena24" / "49.jpg", tmp_path / name)
    labels = write_labels(tmp_path / "labels.csv", [["'=x.jpg", "crow"], ["a.jpg", "crow"], ["b.jpg", "'-fox"]])
    folder = scan_folder(labels)
    assert {(s.path.name, s.label) for s in folder.samples} == {("=x.jpg", "crow"), ("a.jpg", "crow"),
                                                                ("b.jpg", "-fox")}


BAD_CSVS = {
    "missing column": ([["49.jpg", "crow"]], ("path", "label"), "line 1: a labels CSV needs the columns filepath and "
                                                                "label (optional: split, site); filepath missing"),
    "unknown split": ([["49.jpg", "crow", "train"], ["2480.jpg", "possum", "later"]], ("filepath", "label", "split"),
                      "line 3: split 'later' is not train, val, test (or holdout)"),
    "empty split": ([["49.jpg", "crow", ""]], ("filepath", "label", "split"), "line 2: split '' is not train"),
    "path outside": ([["49.jpg", "crow"], ["../ena24/2480.jpg", "possum"]], ("filepath", "label"),
                     "line 3: '../ena24/2480.jpg' is not a photo inside the CSV's folder"),
    "absolute outside": ([["/etc/passwd", "crow"]], ("filepath", "label"),
                         "line 2: '/etc/passwd' is not a photo inside"),
    "no label": ([["49.jpg", ""]], ("filepath", "label"), "line 2: needs a filepath and a label"),
    "two labels": ([["49.jpg", "crow"], ["2480.jpg", "possum"], ["49.jpg", "fox"]], ("filepath", "label"),
                   "line 4: '49.jpg' is labelled 'fox' here and 'crow' on line 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_a_bad_labels_csv_is_one_line_naming_the_file_and_row(case, camera_traps, tmp_path, capsys):
    rows, header, message = BAD_CSVS[case]
    data = tmp_path / "traps"
    data.mkdir()
    for name in ("49.jpg", "2480.jpg"):
        shutil.copyfile(camera_traps / "ena24" / name, data / name)
    labels = write_labels(data / "labels.csv", rows, header)
    before = tree_snapshot(data)
    assert main(["data", "split", str(labels), "--out", str(tmp_path / "split.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"zoolens: error: {labels}: ") and message in err, err
    assert not (tmp_path / "split.csv").exists() and tree_snapshot(data) == before


def test_a_missing_photo_is_named_with_its_row_and_left_out(camera_traps, tmp_path, capsys):
    data = tmp_path / "traps"
    data.mkdir()
    for name in ("49.jpg", "8200.jpg", "2480.jpg", "2573.jpg"):
        shutil.copyfile(camera_traps / "ena24" / name, data / name)
    labels = write_labels(data / "labels.csv", [["49.jpg", "crow"], ["8200.jpg", "crow"], ["gone.jpg", "crow"],
                                                ["2480.jpg", "possum"], ["2573.jpg", "possum"]])
    assert main(["data", "split", str(labels), "--out", str(tmp_path / "split.csv")]) == 0
    out = capsys.readouterr().out
    assert f"skipped {data / 'gone.jpg'}: line 4 of labels.csv: file not found" in out
    _, rows = read_rows(tmp_path / "split.csv")
    assert sorted(r["path"] for r in rows) == ["2480.jpg", "2573.jpg", "49.jpg", "8200.jpg"]


def test_a_csv_of_only_missing_photos_says_where_paths_are_looked_for(tmp_path):
    labels = write_labels(tmp_path / "labels.csv", [["a.jpg", "crow"], ["b.jpg", "fox"]])
    with pytest.raises(ZoolensError, match=r"none of its 2 photos can be read \(paths are relative to the CSV's "
                                           r"folder"):
        scan_folder(labels)


def test_data_inspect_reads_a_labels_csv(camera_traps, capsys):
    assert main(["data", "inspect", str(camera_traps / "ena24" / "labels.csv"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["counts"]["all"].values()) == 21 and len(summary["classes"]) == 7


# ---- Camtrap DP -----------------------------------------------------------------------------------------
def test_the_official_example_has_one_local_label_and_names_its_remote_media_in_one_line(camera_traps, capsys):
    package = camera_traps / "camtrap-dp-example"
    assert main(["data", "split", str(package), "--out", "/nonexistent/never-written.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "needs photos of at least two labels to train on; found only 'Ardea'; 413 remote media" in err


def test_a_camtrap_dp_package_is_labelled_by_its_media_observations(camera_traps, tmp_path):
    package = package_with_blanks(camera_traps, tmp_path / "package")
    folder = scan_folder(package)
    assert folder.source == "camtrap-dp" and folder.classes == ["Ardea", "blank"]
    herons = sorted(s.path.name for s in folder.samples if s.label == "Ardea")
    assert herons == sorted(p.name for p in (package / "media").glob("*RCNX*.JPG")) and len(herons) == 10
    assert {folder.cameras[s.path] for s in folder.samples if s.label == "Ardea"} == {"62c200a9"}
    assert {folder.sites[s.path] for s in folder.samples if s.label == "blank"} == {"2df5259b"}  # its locationID
    # the 413 remote media are one line, with their count and first examples, not 413 lines
    remote = [reason for _, reason in folder.skipped if "remote media" in reason]
    assert len(remote) == 1 and remote[0].startswith("413 remote media") and "https://" in remote[0]
    manifest = split_folder(folder)  # by event, by default: the ten heron frames stay together
    assert len({role for sample, role in manifest.rows if sample.label == "Ardea"}) == 1


def test_event_level_observations_label_the_frames_of_their_event(camera_traps, tmp_path):
    package = package_with_blanks(camera_traps, tmp_path / "package")
    header, observations = read_rows(package / "observations.csv")
    # the herons' media-level observations gone: the event-level one (eventStart..eventEnd, in UTC) labels them
    kept = [row for row in observations if not (row["eventID"] == HERON_EVENT and row["observationLevel"] == "media")]
    assert len(kept) == len(observations) - 10
    write_rows(package / "observations.csv", header, kept)
    folder = scan_folder(package)
    assert sum(s.label == "Ardea" for s in folder.samples) == 10
    assert {folder.event_links[s.path] for s in folder.samples if s.label == "Ardea"} == {HERON_EVENT}


def test_unknown_missing_and_doubly_labelled_frames_are_left_out_one_line_each(camera_traps, tmp_path):
    package = package_with_blanks(camera_traps, tmp_path / "package")
    header, observations = read_rows(package / "observations.csv")
    heron_rows = [row for row in observations if row["eventID"] == HERON_EVENT and row["observationLevel"] == "media"]
    heron_rows[0]["observationType"], heron_rows[0]["scientificName"] = "unknown", ""
    heron_rows[1]["observationType"], heron_rows[1]["scientificName"] = "unclassified", ""
    observations.append({**heron_rows[2], "observationID": "second", "scientificName": "Vulpes vulpes"})
    write_rows(package / "observations.csv", header, observations)
    (package / "media" / "empty-2.jpg").unlink()
    folder = scan_folder(package)
    assert sum(s.label == "Ardea" for s in folder.samples) == 7 and sum(s.label == "blank" for s in folder.samples) == 2
    reasons = sorted(reason for _, reason in folder.skipped)
    assert any(r.startswith("2 frames observed only as unknown or unclassified") for r in reasons), reasons
    assert any(r.startswith("1 frames with two different labels") for r in reasons), reasons
    assert any(r.startswith("1 media not found in the package's folder") and "media/empty-2.jpg" in r
               for r in reasons), reasons
    assert len(reasons) == 4  # and the remote ones: one line per reason


def test_the_review_page_finds_a_labels_csvs_photos_and_keeps_its_decisions_outside_them(camera_traps, tmp_path,
                                                                                          monkeypatch):
    from zoolens.apps.review import Review
    from zoolens.cli import build_parser
    from zoolens.cli.apps import web_command

    labels = camera_traps / "ena24" / "labels.csv"
    monkeypatch.chdir(tmp_path)
    command = web_command(build_parser().parse_args(["web", "--review", str(labels)]))
    assert command[command.index("--review") + 1] == str(labels.resolve())  # the CSV itself, read as train reads it
    review = Review(labels)
    sample = scan_folder(labels).samples[0]
    flag = Flag(path=str(sample.path.relative_to(labels.parent)), reason=OUTLIER, score=0.0)
    assert review.photo(flag).is_file()  # flags name it so
    assert review.corrections.resolve().parent == tmp_path  # never beside the photos
