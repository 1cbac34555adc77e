"""`zoolens results RESULTS.parquet ...` on the results of a real `zoolens predict MODEL DIR --out RESULTS.parquet`:
real camera-trap frames (shared/datasets/camera-traps) in camera folders, each frame's time and camera read by the
batch job, events formed across everything predicted (the job chunked and resumed), and every output checked by its
own validator (MegaDetector's validate_batch_results; frictionless against the Camtrap DP 1.0.2 schemas kept in
tests/data).

The kinds are the frame judge's (zoolens predict --camera-traps: zoolens.inference.frame_judge), as measured on these
frames: blank frames blank, the vehicle a vehicle, the animals animals, the heron burst one animal frame of ten (its
event an animal), and human.jpg a person (the judge's rule 3: BlazePose on its box's crop)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from helpers import PROJECT, exif_with_zero_denominator_gps, frictionless_errors, md_validate

from zoolens.cli import main

BURST = "camtrap-dp-example/media"  # the heron burst: 10 frames, 2021-04-11 20:43:09 to 20:43:15
CAM2 = ("blank.jpg", "human.jpg", "vehicle.jpg", "domestic_dog.jpg", "ocelot.jpg",
        "american_black_bear.jpg", "african_elephants_truncated_file.jpg")
DEPLOYMENTS = ("deploymentID,latitude,longitude,cameraModel\ncam1,51.496,4.774,Reconyx-HF2X\ncam2,-2.333,34.833,\n"
               "cam3,-2.4,34.9,\n")


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def camera_folders(camera_traps: Path, root: Path) -> Path:
    """cam1/100RECNX/ (a Reconyx overflow folder) holds the heron burst, cam2/ speciesnet frames (blank, person,
    vehicle, animals, two without an EXIF time, a truncated file), cam3/ another blank frame (taken before cam2's
    blank.jpg: in cam2 it would look like a clock reset)."""
    (root / "cam1" / "100RECNX").mkdir(parents=True)
    (root / "cam2").mkdir()
    (root / "cam3").mkdir()
    shutil.copyfile(camera_traps / "speciesnet-test" / "blank2.jpg", root / "cam3" / "blank2.jpg")
    for photo in sorted((camera_traps / BURST).glob("*.JPG")):
        shutil.copyfile(photo, root / "cam1" / "100RECNX" / photo.name)
    for name in CAM2:
        shutil.copyfile(camera_traps / "speciesnet-test" / name, root / "cam2" / name)
    return root


@pytest.fixture(scope="module")
def predicted(trained_model, camera_traps, tmp_path_factory):
    """(photo folder, results folder, the rows as predicted): the job stopped after 5 photos in chunks of 4, then
    resumed by `zoolens predict --camera-traps` to the end, every frame judged."""
    from zoolens.inference.batch import predict_folder

    work = tmp_path_factory.mktemp("season")
    traps = camera_folders(camera_traps, work / "traps")
    out = work / "results.parquet"
    predict_folder(trained_model, traps, out, chunk_size=4, limit=5, workers=0, progress=False, camera_traps=True)
    assert main(["predict", str(trained_model.path), str(traps), "--out", str(out), "--workers", "1",
                 "--camera-traps"]) == 0
    return traps, out, pq.read_table(out).to_pylist()


def run_results(*arguments) -> int:
    return main(["results", *map(str, arguments)])


def one_line_error(capsys, code: int, *expected: str) -> str:
    """The refusal: exit 2, one error line, last (warnings of the library's log may come before it: the speciesnet
    frames of cam2 come from cameras years apart, which reads as a clock reset), no traceback."""
    said = capsys.readouterr().err
    lines = said.splitlines()
    errors = [line for line in lines if line.startswith("zoolens: error: ")]
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in said, said
    for text in expected:
        assert text in errors[0], said
    return errors[0]


# --- what the batch job records of each frame ----------------------------------------------------------------------

def test_each_frame_has_its_exif_time_its_camera_and_its_kind(predicted):
    _, out, rows = predicted
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert len(rows) == 18 and len({row["path"] for row in rows}) == 18  # one row each, across 2 runs and 4+ parts
    heron = by_name["20210531082538-RCNX0031.JPG"]
    assert (heron["camera"], heron["time"], heron["time_read"], heron["time_problem"]) == (
        "cam1", datetime(2021, 4, 11, 20, 43, 9), "2021:04:11 20:43:09", None)  # the overflow folder taken out
    assert by_name["human.jpg"]["time"] == datetime(2024, 1, 21, 15, 19, 15)
    bear = by_name["american_black_bear.jpg"]
    assert (bear["camera"], bear["time"], bear["time_read"], bear["time_problem"]) == ("cam2", None, "",
                                                                                       "no EXIF time")
    truncated = by_name["african_elephants_truncated_file.jpg"]
    assert truncated["error"].startswith("damaged image") and truncated["time"] is None and truncated["time_problem"]
    assert truncated["kind"] is None and truncated["kind_confidence"] is None  # unreadable: not judged
    kinds = {name: row["kind"] for name, row in by_name.items() if not row["error"]}
    assert kinds["blank.jpg"] == kinds["blank2.jpg"] == "blank" and kinds["vehicle.jpg"] == "vehicle"
    assert kinds["domestic_dog.jpg"] == kinds["ocelot.jpg"] == kinds["american_black_bear.jpg"] == "animal"
    assert all(0 <= row["kind_confidence"] <= 1 for row in rows if not row["error"])
    assert pq.read_schema(next(out.glob("part-*.parquet"))).field("time").type == pa.timestamp("ms")


# --- the outputs ----------------------------------------------------------------------------------------------------

def test_the_megadetector_file_passes_its_validator_with_paths_relative_to_the_folder_predicted(predicted, tmp_path,
                                                                                              capsys):
    traps, out, _ = predicted
    assert run_results(out, "--megadetector", tmp_path / "md.json") == 0
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / 'md.json'} (MegaDetector batch results 1.6; paths relative to" in said
    verdict = md_validate(tmp_path / "md.json", base=traps)  # every file where it says, relative to the folder
    assert verdict["errors"] == [] and verdict["warnings"] == []
    results = json.loads((tmp_path / "md.json").read_text())
    images = {image["file"]: image for image in results["images"]}
    assert len(images) == 18 and "cam1/100RECNX/20210531082538-RCNX0031.JPG" in images
    assert images["cam2/blank.jpg"]["detections"] == []
    assert [d["category"] for d in images["cam2/human.jpg"]["detections"]] == ["2"]  # a person
    assert [d["category"] for d in images["cam2/vehicle.jpg"]["detections"]] == ["3"]
    truncated = images["cam2/african_elephants_truncated_file.jpg"]
    assert truncated["detections"] is None and truncated["failure"].startswith("damaged image")
    assert results["classification_categories"] == {"0": "cats", "1": "dogs", "2": "panda"}


def test_the_events_csv_has_the_heron_burst_as_one_event_across_chunks_and_runs(predicted, tmp_path, capsys):
    _, out, _ = predicted
    assert run_results(out, "--events", tmp_path / "events.csv") == 0
    said = capsys.readouterr().out
    assert "18 frames" in said and "in 9 events" in said
    assert "2 frames had no usable capture time: each is an event of its own" in said
    rows = list(csv.DictReader((tmp_path / "events.csv").open(encoding="utf-8")))
    assert len(rows) == 9
    (heron,) = [row for row in rows if row["camera"] == "cam1"]  # ONE event of the 10 frames
    assert (heron["frames"], heron["kind"], heron["blank"], heron["animal"]) == ("10", "animal", "9", "1")
    assert (heron["start"], heron["end"]) == ("2021-04-11T20:43:09", "2021-04-11T20:43:15")
    cam2 = [row for row in rows if row["camera"] == "cam2"]
    assert len(cam2) == 7 and all(row["frames"] == "1" for row in cam2)  # years apart, or without a time
    assert sorted(row["kind"] for row in cam2) == ["animal", "animal", "animal", "blank", "person", "unreadable",
                                                   "vehicle"]  # human.jpg: a person

    assert run_results(out, "--events", tmp_path / "gap0.csv", "--sequence-gap", "0") == 0
    rows = list(csv.DictReader((tmp_path / "gap0.csv").open(encoding="utf-8")))
    assert sum(row["camera"] == "cam1" for row in rows) == 7  # seconds 09 to 15: frames of one second, one event


def write_inputs(folder: Path, deployments: str = DEPLOYMENTS, project: dict = PROJECT) -> tuple[Path, Path]:
    (folder / "deployments.csv").write_text(deployments, encoding="utf-8")
    (folder / "project.json").write_text(json.dumps(project), encoding="utf-8")
    return folder / "deployments.csv", folder / "project.json"


def test_the_camtrap_dp_package_validates_with_the_heron_burst_as_one_event(predicted, tmp_path, capsys):
    _, out, _ = predicted
    deployments, project = write_inputs(tmp_path)
    package = tmp_path / "package"
    assert run_results(out, "--camtrap-dp", package, "--deployments", deployments, "--project", project,
                       "--timezone", "+02:00") == 0
    said = capsys.readouterr()
    assert "2 frames had no usable capture time: each is an event of its own and left out of the Camtrap DP " \
           "package" in said.out
    assert "Camtrap DP 1.0.2: 3 deployments, 16 media" in said.out and "UTC+02:00" in said.out
    assert frictionless_errors(package) == []
    with open(package / "observations.csv", newline="", encoding="utf-8") as handle:
        observations = list(csv.DictReader(handle))
    media_level = [row for row in observations if row["observationLevel"] == "media"]
    assert len(media_level) == 16
    heron = {row["eventID"] for row in media_level if row["deploymentID"] == "cam1"}
    assert len(heron) == 1  # the burst's ten frames carry one eventID
    events = [row for row in observations if row["observationLevel"] == "event"]
    assert [row["observationType"] for row in events if row["eventID"] in heron] == ["animal"]
    assert {row["observationType"] for row in media_level} == {"animal", "blank", "human", "vehicle"}
    assert all(row["eventStart"].endswith("+02:00") for row in observations)

    capsys.readouterr()
    assert run_results(out, "--camtrap-dp", tmp_path / "utc", "--deployments", deployments, "--project",
                       project) == 0
    said = capsys.readouterr()
    assert "times at UTC, assumed" in said.out and "time zone was not given" in said.err


def test_the_report_shows_the_counts_the_events_and_both_figures(predicted, tmp_path, capsys):
    _, out, _ = predicted
    assert run_results(out, "--report", tmp_path / "season.html") == 0
    page = (tmp_path / "season.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2  # the activity and the timeline, embedded
    assert 'alt="detections of each class by hour of day"' in page and 'alt="each camera\'s days with events"' in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert ">18<" in page and ">9<" in page  # frames, events
    assert "cam1/100RECNX/20210531082538-RCNX0031.JPG" in page  # the heron event's first frame


def test_the_figures_count_events_by_hour_and_each_cameras_days(predicted):
    from zoolens.evaluation.camera_trap_report import activity_counts, timeline_days
    from zoolens.inference.camera_traps import read_camera_trap_results

    found = read_camera_trap_results(predicted[1])
    activity = activity_counts(found.events)
    assert activity["person"][15] == 1  # human.jpg (15:19)
    assert sum(hours[15] for hours in activity.values()) == 2  # it and the vehicle
    assert activity["vehicle"][15] == 1
    assert sum(sum(hours) for hours in activity.values()) == 5  # the heron, dog, ocelot, human, vehicle; the bear
    days = timeline_days(found.events)  # has no time
    assert days["cam1"] == {datetime(2021, 4, 11).date(): {"animal": 1}}
    assert len(days["cam2"]) == 5 and len(days["cam3"]) == 1


def test_a_screenshot_of_the_report_shows_both_figures(predicted, tmp_path):
    from helpers import chromium_browser

    _, out, _ = predicted
    assert run_results(out, "--report", tmp_path / "season.html") == 0
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((tmp_path / "season.html").as_uri())
        widths = page.eval_on_selector_all("img.figure", "images => images.map(i => i.naturalWidth)")
        assert len(widths) == 2 and all(width > 500 for width in widths)  # decoded, not broken images
        page.screenshot(path=str(tmp_path / "season.png"), full_page=True)
    assert (tmp_path / "season.png").stat().st_size > 50_000


# --- refusals: one line, exit 2, nothing written --------------------------------------------------------------------

def test_refusals_are_one_line_and_write_nothing(predicted, tmp_path, capsys):
    traps, out, _ = predicted
    deployments, project = write_inputs(tmp_path)
    cases = [
        ([out], ["nothing to write"]),
        ([out, "--camtrap-dp", tmp_path / "p"], ["--camtrap-dp needs --deployments FILE.csv", "'cam1'"]),
        ([out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments], ["--camtrap-dp needs --project"]),
        ([out, "--megadetector", traps / "cam2" / "md.json"], ["--megadetector is inside the photo folder"]),
        ([out, "--report", traps / "cam1" / "100RECNX" / "20210531082538-RCNX0031.JPG"], ["--report is inside"]),
        ([out, "--events", out / "events.csv"], ["--events is inside the results folder"]),
        ([out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments, "--project", project, "--events",
          deployments], ["--events is also --deployments"]),
        ([out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments, "--project", project, "--timezone",
          "+25:00"], ["time zone '+25:00'"]),
        ([out, "--megadetector", tmp_path / "m.json", "--timezone", "+02:00"], ["--timezone: only with --camtrap-dp"]),
        ([out, "--events", tmp_path / "e.csv", "--sequence-gap", "-1"], ["--sequence-gap -1"]),
        ([tmp_path / "nowhere.parquet", "--events", tmp_path / "e.csv"], ["no such results folder"]),
    ]
    for arguments, expected in cases:
        one_line_error(capsys, run_results(*arguments), *expected)
    link = tmp_path / "into-the-photos"
    link.symlink_to(traps / "cam2")
    one_line_error(capsys, run_results(out, "--megadetector", link / "md.json"), "inside the photo folder")
    assert not (tmp_path / "p").exists() and not (tmp_path / "e.csv").exists() and not (tmp_path / "m.json").exists()
    assert not (traps / "cam2" / "md.json").exists() and not (out / "events.csv").exists()


def test_what_only_the_user_knows_is_refused_naming_the_file_and_field(predicted, tmp_path, capsys):
    _, out, _ = predicted
    deployments, project = write_inputs(tmp_path, DEPLOYMENTS.replace("cam3,-2.4,34.9,\n", ""))
    one_line_error(capsys, run_results(out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments, "--project",
                                       project), f"{deployments}: no row with deploymentID 'cam3'")
    deployments, project = write_inputs(tmp_path, DEPLOYMENTS, {**PROJECT, "contributors": []})
    one_line_error(capsys, run_results(out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments, "--project",
                                       project), f"{project}: Camtrap DP needs contributors")
    deployments, _ = write_inputs(tmp_path, DEPLOYMENTS.replace("51.496", "north"))
    one_line_error(capsys, run_results(out, "--camtrap-dp", tmp_path / "p", "--deployments", deployments, "--project",
                                       project), f"{deployments}: deploymentID 'cam1': latitude 'north'")
    (tmp_path / "bad.csv").write_text("camera,lat\ncam1,5\n")
    one_line_error(capsys, run_results(out, "--camtrap-dp", tmp_path / "p", "--deployments", tmp_path / "bad.csv",
                                       "--project", project), "bad.csv: no deploymentID column")
    assert not (tmp_path / "p").exists()


def test_results_never_judged_or_of_an_older_version_are_refused_in_one_line(predicted, tmp_path, capsys):
    _, out, rows = predicted
    unjudged = tmp_path / "unjudged.parquet"
    shutil.copytree(out, unjudged)
    for part in unjudged.glob("part-*.parquet"):
        table = pq.read_table(part)
        table = table.set_column(table.schema.get_field_index("kind"), "kind", pa.nulls(table.num_rows, pa.string()))
        pq.write_table(table, part)
    one_line_error(capsys, run_results(unjudged, "--events", tmp_path / "e.csv"),
                   "17 of 18 frames were never judged blank, animal, person or vehicle",
                   "run zoolens predict MODEL FOLDER --out NEW.parquet --camera-traps")
    older = tmp_path / "older.parquet"
    shutil.copytree(out, older)
    settings = json.loads((older / "_zoolens.json").read_text())
    (older / "_zoolens.json").write_text(json.dumps({**settings, "results_version": 4}))
    one_line_error(capsys, run_results(older, "--events", tmp_path / "e.csv"), "results_version 4, this one reads 5")
    assert not (tmp_path / "e.csv").exists()


def test_rows_planted_in_the_results_are_set_aside_and_said(predicted, tmp_path, capsys):
    _, out, _ = predicted
    planted = tmp_path / "planted.parquet"
    shutil.copytree(out, planted)
    part = sorted(planted.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    rows = table.to_pylist()
    rows.append({**rows[0], "path": "/etc/passwd", "folder": "../../etc"})  # not a photo of the folder predicted
    rows.append(dict(rows[1]))  # a second row of one photo
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    assert run_results(planted, "--megadetector", tmp_path / "md.json") == 0
    said = capsys.readouterr()
    assert "2 rows set aside" in said.err
    files = [image["file"] for image in json.loads((tmp_path / "md.json").read_text())["images"]]
    assert len(files) == 18 and not any("passwd" in name for name in files)


# --- hostile metadata, end to end -----------------------------------------------------------------------------------

def frame_with_exif(source: Path, target: Path, exif: bytes | None) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        small = image.convert("RGB").resize((400, 300))
    small.save(target, "JPEG", quality=85, **({"exif": exif} if exif is not None else {}))
    return target


def exif_time(original: str) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = original
    return exif.tobytes()


def test_hostile_metadata_gets_one_line_each_and_no_traceback(trained_model, camera_traps, tmp_path, capsys):
    heron = sorted((camera_traps / BURST).glob("*.JPG"))[4]
    traps = tmp_path / "traps"
    frame_with_exif(heron, traps / "garbage" / "IMG_0001.JPG", b"Exif\x00\x00" + bytes(range(256)) * 4)
    frame_with_exif(heron, traps / "year0" / "IMG_0001.JPG", exif_time("0000:00:00 00:00:00"))
    frame_with_exif(heron, traps / "gps0" / "IMG_0001.JPG", exif_with_zero_denominator_gps("2022:06:01 12:00:00"))
    for name in ("IMG_0001.JPG", "IMG_0002.JPG"):  # two frames with one time
        frame_with_exif(heron, traps / "twins" / name, exif_time("2022:06:01 12:00:00"))
    frame_with_exif(heron, traps / "future" / "IMG_0001.JPG",
                    exif_time((datetime.now() + timedelta(days=400)).strftime("%Y:%m:%d %H:%M:%S")))
    out = tmp_path / "results.parquet"
    assert main(["predict", str(trained_model.path), str(traps), "--out", str(out), "--workers", "1",
                 "--camera-traps"]) == 0
    said = capsys.readouterr()
    assert "Traceback" not in said.err
    rows = {row["path"].split("/traps/", 1)[1]: row for row in pq.read_table(out).to_pylist()}
    assert rows["garbage/IMG_0001.JPG"]["time_problem"] in ("no EXIF time",) or \
        rows["garbage/IMG_0001.JPG"]["time_problem"].startswith("unreadable EXIF")
    assert "year 0000" in rows["year0/IMG_0001.JPG"]["time_problem"]
    assert rows["year0/IMG_0001.JPG"]["time_read"] == "0000:00:00 00:00:00"
    assert rows["gps0/IMG_0001.JPG"]["time"] == datetime(2022, 6, 1, 12)
    assert "in the future" in rows["future/IMG_0001.JPG"]["time_problem"]
    assert all(row["error"] is None for row in rows.values())  # the photos themselves are fine

    assert run_results(out, "--events", tmp_path / "events.csv", "--megadetector", tmp_path / "md.json",
                       "--report", tmp_path / "r.html") == 0
    said = capsys.readouterr()
    assert "Traceback" not in said.err and "3 frames had no usable capture time" in said.out
    events = list(csv.DictReader((tmp_path / "events.csv").open(encoding="utf-8")))
    twins = [row for row in events if row["camera"] == "twins"]
    assert len(twins) == 1 and twins[0]["frames"] == "2"  # one time, one event of two frames
    files = sorted(image["file"] for image in json.loads((tmp_path / "md.json").read_text())["images"])
    assert files == ["future/IMG_0001.JPG", "garbage/IMG_0001.JPG", "gps0/IMG_0001.JPG", "twins/IMG_0001.JPG",
                     "twins/IMG_0002.JPG", "year0/IMG_0001.JPG"]  # the same name in five folders, each its own


def test_decoding_for_a_frames_time_gives_the_pixels_the_network_always_had(camera_traps):
    """The batch job reads the capture time from the photo it opens for the network (no second open): its pixels must
    stay those of runtime.features.decode_pixels."""
    import numpy as np

    from zoolens.data.transforms import Preprocessing
    from zoolens.inference.batch.local import decode_frame
    from zoolens.runtime.features import decode_pixels

    prep = Preprocessing()
    for photo in (camera_traps / "speciesnet-test" / "human.jpg", camera_traps / "speciesnet-test" /
                  "african_elephants_with_exif_orientation.jpg", camera_traps / "speciesnet-test" /
                  "african_elephants_truncated_file.jpg"):
        pixels, problem, time = decode_frame(photo, prep)
        expected, expected_problem = decode_pixels(photo, prep)
        assert problem == expected_problem
        assert (pixels is None and expected is None) or np.array_equal(pixels, expected)
        assert (time.time is not None) == (expected is not None)


def test_export_results_is_a_public_name(predicted, tmp_path):
    import zoolens

    done = zoolens.export_results(predicted[1], events=tmp_path / "e.csv")
    assert done.events == tmp_path / "e.csv" and len(done.found.frames) == 18
    assert os.path.exists(done.events)


def test_results_help_loads_no_heavy_library_and_a_mistyped_option_gets_the_closest():
    from helpers import run_probe

    code, output, heavy = run_probe("results", "--help")
    assert code == "0" and heavy == [] and "--camtrap-dp FOLDER" in output and "examples:" in output
    code, output, heavy = run_probe("results", "r.parquet", "--megadetecter", "md.json")
    assert code == "2" and heavy == [] and "--megadetecter: did you mean --megadetector?" in output
