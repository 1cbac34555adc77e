"""The camera-trap outputs (zoolens.inference.camera_trap_formats), written from answers for the real frames of
shared/datasets/camera-traps and checked by the formats' own validators: MegaDetector's validate_batch_results, and
frictionless against the official Camtrap DP 1.0.2 profile and table schemas (copies in tests/data/camtrap-dp-1.0.2,
served to frictionless by a local transport: nothing is fetched, and a URL not among the copies fails the test).
The frames' kinds are given here (deciding them is not this module's work); their times and cameras are read."""

from __future__ import annotations

import csv
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import CAMTRAP, PROJECT, frictionless_errors, md_validate
from PIL import Image

from zoolens.data.camera_trap import Event, camera_of, capture_time, form_events
from zoolens.errors import ImageError, ZoolensError
from zoolens.inference.camera_trap_formats import (
    ANIMAL_THRESHOLD,
    EVENT_CSV_COLUMNS,
    FrameAnswer,
    event_answers,
    frames_of,
    roll_up,
    write_camtrap_dp,
    write_events_csv,
    write_megadetector,
)


CLASSES = ["elephant", "bear", "cattle", "dog", "fox"]
CLASS_NAMES = {"elephant": "African elephant", "bear": "American black bear"}
SCIENTIFIC = {"elephant": "Loxodonta africana", "fox": "Vulpes vulpes"}
ELEPHANT = ("animal", 0.97, (("elephant", 0.9), ("cattle", 0.1)))
# speciesnet-test: what each frame shows (its README and labels.csv); the kinds and probabilities are given here
SPECIESNET = {
    "african_elephants.jpg": ELEPHANT,
    "african_elephants_bw.jpg": ELEPHANT,
    "african_elephants_cmyk.jpg": ELEPHANT,
    "african_elephants_with_exif_orientation.jpg": ELEPHANT,
    "american_black_bear.jpg": ("animal", 0.9, (("bear", 0.7), ("dog", 0.3))),
    "domestic_cattle.jpg": ("animal", 0.95, (("cattle", 0.8), ("bear", 0.2))),
    "domestic_dog.jpg": ("animal", 0.9, (("dog", 0.85), ("fox", 0.15))),
    "ocelot.jpg": ("animal", 0.4, ()),  # an animal unlike the model's classes, and not a sure one
    "blank.jpg": ("blank", 0.92, ()),
    "blank2.jpg": ("blank", 0.9, ()),
    "blank3.jpg": ("blank", 0.88, ()),
    "human.jpg": ("person", 0.85, ()),
    "vehicle.jpg": ("vehicle", 0.8, ()),
    "african_elephants_truncated_file.jpg": ("unreadable", None, ()),  # the reason comes from decoding it
}
BURST = "camtrap-dp-example/media"
DEPLOYMENTS = [
    {"deploymentID": BURST, "latitude": "51.496", "longitude": "4.774", "cameraModel": "Reconyx-HF2X"},
    {"deploymentID": "speciesnet-test", "latitude": "-2.333", "longitude": "34.833",
     "deploymentComments": "=frames from several projects"},
]


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def answer_for(root: Path, path: Path, kind: str, confidence, classifications) -> FrameAnswer:
    relative = path.relative_to(root).as_posix()
    with Image.open(path) as image:
        time = capture_time(image)
    error = ""
    if kind == "unreadable":
        from zoolens.data.images import open_image

        with pytest.raises(ImageError) as raised:
            open_image(path)
        error = raised.value.reason
    return FrameAnswer(relative, camera_of(relative), time.time, time.text, time.problem, kind, confidence,
                       classifications, error)


@pytest.fixture(scope="module")
def answers(camera_traps):
    """The 10-frame burst of the Camtrap DP example (real EXIF times; 2 empty frames, then a fox) and the speciesnet
    test frames (blank, person, vehicle, animals, a truncated file; some without an EXIF time)."""
    burst = sorted((camera_traps / BURST).glob("*.JPG"))
    found = [answer_for(camera_traps, path, "blank", 0.8, ()) if index < 2 else
             answer_for(camera_traps, path, "animal", 0.9, (("fox", 0.75), ("dog", 0.25)))
             for index, path in enumerate(burst)]
    found += [answer_for(camera_traps, camera_traps / "speciesnet-test" / name, *spec)
              for name, spec in SPECIESNET.items()]
    assert len(found) == 24
    return found


def by_file(answers):
    return {answer.path.rsplit("/", 1)[-1]: answer for answer in answers}


# --- MegaDetector ---------------------------------------------------------------------------------------------------


def test_the_megadetector_file_passes_its_validator_and_says_what_each_frame_is(answers, camera_traps, tmp_path):
    out = write_megadetector(answers, CLASSES, CLASS_NAMES, tmp_path / "md.json", classifier="zoolens test-model")
    verdict = md_validate(out, base=camera_traps)  # every file found where it says, relative to the folder predicted
    assert verdict["errors"] == [] and verdict["warnings"] == []
    assert verdict["detection_category_id_to_count"] == {"1": 16, "2": 1, "3": 1}

    results = json.loads(out.read_text())
    assert results["info"]["format_version"] == "1.6"  # the string: 1.6 refuses a number
    assert results["info"]["classifier"] == "zoolens test-model"
    assert results["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert results["classification_categories"] == {"0": "African elephant", "1": "American black bear",
                                                     "2": "cattle", "3": "dog", "4": "fox"}
    images = {image["file"]: image for image in results["images"]}
    assert len(images) == 24 and all("\\" not in name and not name.startswith("/") for name in images)
    for name in ("blank.jpg", "blank2.jpg", "blank3.jpg"):
        assert images[f"speciesnet-test/{name}"] == {"file": f"speciesnet-test/{name}", "detections": []}
    truncated = images["speciesnet-test/african_elephants_truncated_file.jpg"]
    assert truncated["detections"] is None and truncated["failure"].startswith("damaged image (image file is truncated")
    (person,) = images["speciesnet-test/human.jpg"]["detections"]
    assert person == {"category": "2", "conf": 0.85, "bbox": [0.0, 0.0, 1.0, 1.0]}
    (vehicle,) = images["speciesnet-test/vehicle.jpg"]["detections"]
    assert vehicle["category"] == "3" and "classifications" not in vehicle
    (elephant,) = images["speciesnet-test/african_elephants.jpg"]["detections"]
    assert elephant == {"category": "1", "conf": 0.97, "bbox": [0.0, 0.0, 1.0, 1.0],
                        "classifications": [["0", 0.9], ["2", 0.1]]}
    assert isinstance(elephant["conf"], float) and isinstance(elephant["classifications"][0][1], float)
    (ocelot,) = images["speciesnet-test/ocelot.jpg"]["detections"]  # an animal the model has no class for
    assert ocelot["category"] == "1" and "classifications" not in ocelot
    burst = [images[name] for name in sorted(images) if name.startswith(BURST)]
    assert [len(image["detections"]) for image in burst] == [0, 0] + [1] * 8


def test_the_megadetector_file_is_shaped_as_the_one_megadetector_wrote_for_ena24(answers, camera_traps, tmp_path):
    reference = json.loads((camera_traps / "ena24" / "md_annotations.json").read_text())
    assert md_validate(camera_traps / "ena24" / "md_annotations.json")["errors"] == []
    ours = json.loads(write_megadetector(answers, CLASSES, None, tmp_path / "md.json").read_text())
    assert set(ours) <= set(reference) and set(ours["info"]) <= set(reference["info"]) | {"detector_metadata"}
    assert ours["detection_categories"] == reference["detection_categories"]
    theirs = reference["images"][0]["detections"][0]
    mine = next(image for image in ours["images"] if image["file"].endswith("african_elephants.jpg"))["detections"][0]
    assert set(mine) == set(theirs)
    assert [type(value) for value in mine["classifications"][0]] == [type(v) for v in theirs["classifications"][0]]


def test_a_megadetector_file_broken_on_purpose_is_refused_by_the_validator(answers, tmp_path):
    """The validator these tests rely on sees what it should: each break alone makes it report an error."""
    path = write_megadetector(answers, CLASSES, None, tmp_path / "md.json")
    good = json.loads(path.read_text())
    breaks = {
        "format_version a number": lambda d: d["info"].update(format_version=1.6),
        "failure with detections": lambda d: next(i for i in d["images"] if "failure" in i).update(detections=[]),
        "conf an int": lambda d: next(i for i in d["images"] if i["detections"])["detections"][0].update(conf=1),
        "unknown class id": lambda d: next(i for i in d["images"] if i["detections"] and
                                           "classifications" in i["detections"][0])["detections"][0]
        .update(classifications=[["99", 0.5]]),
    }
    for name, damage in breaks.items():
        broken = json.loads(json.dumps(good))
        damage(broken)
        path.write_text(json.dumps(broken))
        assert md_validate(path)["errors"], name


# --- Camtrap DP -----------------------------------------------------------------------------------------------------


def write_package(answers, folder, **options):
    options.setdefault("deployments", DEPLOYMENTS)
    options.setdefault("project", PROJECT)
    options.setdefault("timezone", timezone(timedelta(hours=2)))
    return write_camtrap_dp(answers, event_answers(answers), CLASSES, SCIENTIFIC, folder,
                            classified_by="zoolens 0.1.0 test-model", **options)


def read_table(folder: Path, name: str) -> list[dict]:
    with open(folder / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def package(answers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("camtrap") / "package"
    written = write_package(answers, folder)
    return folder, written


def test_the_camtrap_dp_package_validates_against_the_official_profile_and_table_schemas(package):
    folder, written = package
    assert frictionless_errors(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == ["datapackage.json", "deployments.csv", "media.csv",
                                                        "observations.csv"]
    descriptor = json.loads((folder / "datapackage.json").read_text())
    assert descriptor["profile"] == CAMTRAP + "camtrap-dp-profile.json"
    assert [(r["name"], r["path"], r["schema"]) for r in descriptor["resources"]] == [
        (name, f"{name}.csv", f"{CAMTRAP}{name}-table-schema.json")
        for name in ("deployments", "media", "observations")]
    assert descriptor["project"] == {**PROJECT["project"], "individualAnimals": False,
                                     "observationLevel": ["media", "event"]}
    assert descriptor["contributors"] == PROJECT["contributors"] and descriptor["licenses"] == PROJECT["licenses"]
    assert descriptor["spatial"]["type"] == "Polygon"  # the box around the two cameras, never a made-up place
    assert descriptor["temporal"] == {"start": "2006-02-10", "end": "2024-01-21"}  # ocelot.jpg, human.jpg
    assert descriptor["taxonomic"] == [{"scientificName": name} for name in
                                       ("Loxodonta africana", "Vulpes vulpes", "cattle", "dog")]  # the bear has no time
    assert "UTC+02:00" in descriptor["description"]
    assert (written.deployments, written.media, written.timezone_assumed) == (2, 21, False)


def test_every_frame_with_a_time_is_a_medium_with_a_media_level_observation_carrying_its_event(answers, package):
    folder, written = package
    media = {row["filePath"]: row for row in read_table(folder, "media")}
    timed = {a.path for a in answers if a.time is not None}
    assert set(media) == timed and len(media) == written.media
    assert media[f"{BURST}/20210531082538-RCNX0031.JPG"]["timestamp"] == "2021-04-11T20:43:09+02:00"
    assert {row["fileMediatype"] for row in media.values()} == {"image/jpeg"}

    observations = read_table(folder, "observations")
    on_media = {row["mediaID"]: row for row in observations if row["observationLevel"] == "media"}
    assert {media[path]["mediaID"] for path in timed} == set(on_media)
    of = {path: on_media[media[path]["mediaID"]] for path in timed}
    types = {path.rsplit("/", 1)[-1]: row["observationType"] for path, row in of.items()}
    assert types["blank.jpg"] == types["blank2.jpg"] == types["blank3.jpg"] == "blank"
    assert types["human.jpg"] == "human" and types["vehicle.jpg"] == "vehicle"
    assert types["african_elephants_truncated_file.jpg"] == "unclassified"
    assert types["ocelot.jpg"] == "animal" and of["speciesnet-test/ocelot.jpg"]["scientificName"] == ""
    elephant = of["speciesnet-test/african_elephants.jpg"]
    assert (elephant["scientificName"], elephant["classificationProbability"]) == ("Loxodonta africana", "0.9000")
    assert (elephant["classificationMethod"], elephant["classifiedBy"]) == ("machine", "zoolens 0.1.0 test-model")
    assert of["speciesnet-test/domestic_dog.jpg"]["scientificName"] == "dog"  # no scientific name given: the class

    events = {e.event_id: e for e in event_answers(answers)}
    on_events = {row["eventID"]: row for row in observations if row["observationLevel"] == "event"}
    assert set(on_events) == {e.event_id for e in events.values() if e.start is not None}
    for path, row in of.items():
        assert path in events[row["eventID"]].frames
    burst_events = {row["eventID"] for path, row in of.items() if path.startswith(BURST)}
    assert len(burst_events) == 1  # the burst is one event, its two empty frames in it
    (burst,) = burst_events
    assert on_events[burst]["observationType"] == "animal" and on_events[burst]["scientificName"] == "Vulpes vulpes"
    assert on_events[burst]["eventStart"] == "2021-04-11T20:43:09+02:00"
    # the truncated frame shares its time with two elephant frames: one event, an elephant
    truncated = of["speciesnet-test/african_elephants_truncated_file.jpg"]["eventID"]
    assert on_events[truncated]["scientificName"] == "Loxodonta africana"


def test_frames_without_a_time_are_left_out_counted_and_said(answers, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="zoolens.inference.camera_trap_formats"):
        written = write_package(answers, tmp_path / "p")
    assert written.left_out == tuple(f"speciesnet-test/{name}" for name in (
        "african_elephants_bw.jpg", "african_elephants_cmyk.jpg", "american_black_bear.jpg"))
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("3 frame(s) without a usable capture time left out")
    media = {row["filePath"] for row in read_table(tmp_path / "p", "media")}
    assert not media & set(written.left_out)


def test_without_a_time_zone_utc_is_assumed_and_said(answers, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="zoolens.inference.camera_trap_formats"):
        written = write_package(answers, tmp_path / "p", timezone=None)
    assert written.timezone_assumed and written.timezone == timezone.utc
    assert any("time zone was not given" in r.getMessage() for r in caplog.records)
    descriptor = json.loads((tmp_path / "p" / "datapackage.json").read_text())
    assert "time zone was not given: their times were taken as UTC" in descriptor["description"]
    stamps = [row["timestamp"] for row in read_table(tmp_path / "p", "media")]
    assert all(stamp.endswith("+00:00") for stamp in stamps)
    assert frictionless_errors(tmp_path / "p") == []


def test_the_official_example_package_passes_the_same_validation(camera_traps):
    """The validation above accepts what the Camtrap DP authors published as valid (and asks for every schema)."""
    assert frictionless_errors(camera_traps / "camtrap-dp-example") == []


def test_deployment_dates_are_derived_from_the_frames_and_the_users_columns_kept(package):
    folder, _ = package
    rows = {row["deploymentID"]: row for row in read_table(folder, "deployments")}
    burst = rows[BURST]
    assert (burst["deploymentStart"], burst["deploymentEnd"]) == ("2021-04-11T20:43:09+02:00",
                                                                  "2021-04-11T20:43:15+02:00")
    assert (burst["latitude"], burst["longitude"], burst["cameraModel"]) == ("51.496", "4.774", "Reconyx-HF2X")
    # a text cell that a spreadsheet would run as a formula is written behind a quote (zoolens.spreadsheet)
    assert rows["speciesnet-test"]["deploymentComments"] == "'=frames from several projects"
    assert rows["speciesnet-test"]["latitude"] == "-2.333"  # numbers are numbers, never quoted


@pytest.mark.parametrize("damage, expected", [
    ("drop a required column", "missing-label"),
    ("a wrong observationType", "constraint-error"),
    ("a timestamp without its zone", "type-error"),
    ("no taxonomic coverage", "'taxonomic' is a required property"),
    ("a medium of an unknown deployment", "foreign-key"),
])
def test_a_package_broken_on_purpose_fails_validation(package, tmp_path, damage, expected):
    """The validation above would see each of these breaks: the test fails when the package breaks the profile or a
    table schema."""
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(package[0], folder)
    media, observations = folder / "media.csv", folder / "observations.csv"
    if damage == "drop a required column":
        rows = list(csv.reader(media.open()))
        with media.open("w", newline="") as handle:
            csv.writer(handle).writerows([row[:3] + row[4:] for row in rows])  # timestamp gone
    elif damage == "a wrong observationType":
        observations.write_text(observations.read_text().replace(",human,", ",person,"))
    elif damage == "a timestamp without its zone":
        media.write_text(media.read_text().replace("2021-04-11T20:43:09+02:00", "2021-04-11T20:43:09", 1))
    elif damage == "no taxonomic coverage":
        descriptor = json.loads((folder / "datapackage.json").read_text())
        del descriptor["taxonomic"]
        (folder / "datapackage.json").write_text(json.dumps(descriptor))
    else:
        media.write_text(media.read_text().replace(",speciesnet-test,", ",elsewhere,", 1))
    errors = frictionless_errors(folder)
    assert errors and any(expected in error for error in errors), errors


# --- refusals -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (dict(deployments=None), "Camtrap DP needs each deployment's latitude and longitude, which only you know: give a "
                             "deployments.csv with deploymentID, latitude, longitude (deploymentID "
                             "'camtrap-dp-example/media' and 1 more)"),
    (dict(deployments=DEPLOYMENTS[:1]), "deployments: no row with deploymentID 'speciesnet-test' (the camera folder "
                                        "speciesnet-test): Camtrap DP needs its latitude and longitude"),
    (dict(deployments=[DEPLOYMENTS[0], {"deploymentID": "speciesnet-test", "latitude": "", "longitude": "3"}]),
     "deployments: deploymentID 'speciesnet-test' has no latitude; Camtrap DP needs it (decimal degrees, WGS84)"),
    (dict(deployments=[DEPLOYMENTS[0], {"deploymentID": "speciesnet-test", "latitude": "95", "longitude": "3"}]),
     "deployments: deploymentID 'speciesnet-test': latitude '95' is not a number from -90 to 90"),
    (dict(deployments=[{**DEPLOYMENTS[0], "deploymentStart": "2021-04-11 20:00:00"}, DEPLOYMENTS[1]]),
     "deployments: deploymentID 'camtrap-dp-example/media': deploymentStart '2021-04-11 20:00:00' is not a "
     "date-time with its time zone, such as 2021-05-31T08:25:38+02:00"),
    (dict(project={"contributors": PROJECT["contributors"]}), "project: Camtrap DP needs the project's title, "
                                                              "samplingDesign, captureMethod, which only you know"),
    (dict(project={"project": PROJECT["project"]}), "project: Camtrap DP needs contributors, which only you know"),
    (dict(project={**PROJECT, "project": {**PROJECT["project"], "samplingDesign": "random"}}),
     "project: samplingDesign 'random' is not one of simpleRandom, systematicRandom"),
])
def test_what_only_the_user_knows_is_refused_in_one_line_naming_it_and_nothing_is_written(answers, tmp_path, options,
                                                                                          message):
    with pytest.raises(ZoolensError) as refused:
        write_package(answers, tmp_path / "p", **options)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert not (tmp_path / "p").exists()


def test_a_class_the_model_does_not_have_is_refused(answers, tmp_path):
    for write in (lambda: write_megadetector(answers, CLASSES[1:], None, tmp_path / "md.json"),
                  lambda: write_camtrap_dp(answers, event_answers(answers), CLASSES[1:], None, tmp_path / "p",
                                           deployments=DEPLOYMENTS, project=PROJECT)):
        with pytest.raises(ZoolensError, match=r"african_elephants.*: class 'elephant' is not one of the model's"):
            write()
    assert not (tmp_path / "md.json").exists() and not (tmp_path / "p").exists()


def test_frames_that_all_lack_a_time_are_refused(answers, tmp_path):
    timeless = [a for a in answers if a.time is None]
    with pytest.raises(ZoolensError, match=r"^none of the 3 frames has a usable capture time"):
        write_package(timeless, tmp_path / "p")


def test_frames_at_the_top_of_the_folder_belong_to_the_one_deployment_given(answers, tmp_path):
    burst = [FrameAnswer(a.path.rsplit("/", 1)[-1], "", a.time, a.time_text, "", a.kind, a.kind_confidence,
                         a.classifications) for a in answers if a.path.startswith(BURST)]
    written = write_package(burst, tmp_path / "p", deployments=[{"deploymentID": "cam-1", "latitude": "51.5",
                                                                  "longitude": "4.7"}])
    assert written.media == 10 and {r["deploymentID"] for r in read_table(tmp_path / "p", "media")} == {"cam-1"}
    assert json.loads((tmp_path / "p" / "datapackage.json").read_text())["spatial"] == {
        "type": "Point", "coordinates": [4.7, 51.5]}
    assert frictionless_errors(tmp_path / "p") == []
    with pytest.raises(ZoolensError, match="frames at the top of the folder predicted need a deployment"):
        write_package(burst, tmp_path / "q", deployments=DEPLOYMENTS)


# --- roll_up --------------------------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 6, 0, 0)


def frame(name, kind, confidence=None, classifications=()):
    index = int(name[1:])
    return FrameAnswer(f"cam/{name}.jpg", "cam", T0 + timedelta(seconds=index), "", "", kind, confidence,
                       classifications, "bad" if kind == "unreadable" else "")


def rolled(*frames, threshold=ANIMAL_THRESHOLD):
    (event,) = form_events(frames_of(frames))
    return roll_up(event, {f.path: f for f in frames}, threshold)


def test_one_confident_animal_frame_makes_the_event_an_animal_whatever_else_is_in_it():
    event = rolled(frame("f1", "blank", 0.9), frame("f2", "person", 0.95), frame("f3", "animal", 0.6, (("fox", 1.0),)),
                   frame("f4", "vehicle", 0.9), frame("f5", "unreadable"))
    assert (event.kind, event.kind_confidence, event.species) == ("animal", 0.6, "fox")
    assert event.counts == {"blank": 1, "animal": 1, "person": 1, "vehicle": 1, "unreadable": 1}


def test_the_threshold_decides_between_an_unsure_animal_and_a_person_or_vehicle():
    unsure = frame("f1", "animal", ANIMAL_THRESHOLD - 0.01, (("fox", 0.9),))
    assert rolled(unsure, frame("f2", "person", 0.7)).kind == "person"
    assert rolled(unsure, frame("f2", "vehicle", 0.7)).kind == "vehicle"
    assert rolled(unsure, frame("f2", "person", 0.7), frame("f3", "vehicle", 0.99)).kind == "person"
    assert rolled(unsure, frame("f2", "person", 0.7), threshold=0.4).kind == "animal"
    at_threshold = frame("f1", "animal", ANIMAL_THRESHOLD, (("fox", 0.9),))
    assert rolled(at_threshold, frame("f2", "person", 0.7)).kind == "animal"


def test_an_unsure_animal_with_nothing_else_seen_is_still_an_animal_never_blank():
    event = rolled(frame("f1", "blank", 0.9), frame("f2", "animal", 0.2), frame("f3", "blank", 0.8))
    assert (event.kind, event.kind_confidence, event.species, event.species_confidence) == ("animal", 0.2, "", None)


def test_blank_only_when_all_frames_are_blank_with_the_least_sure_frames_confidence():
    assert (rolled(frame("f1", "blank", 0.9), frame("f2", "blank", 0.7)).kind_confidence) == 0.7
    assert rolled(frame("f1", "blank", 0.9), frame("f2", "blank", 0.7)).kind == "blank"
    mixed = rolled(frame("f1", "blank", 0.9), frame("f2", "unreadable"))
    assert (mixed.kind, mixed.kind_confidence) == ("unknown", None)
    assert rolled(frame("f1", "unreadable"), frame("f2", "unreadable")).kind == "unreadable"


def test_the_species_is_the_highest_mean_probability_over_the_animal_frames():
    event = rolled(frame("f1", "animal", 0.9, (("fox", 0.9), ("dog", 0.1))),
                   frame("f2", "animal", 0.8, (("dog", 0.6), ("fox", 0.4))),
                   frame("f3", "animal", 0.7, (("dog", 0.7),)),  # fox not listed: 0 for it
                   frame("f4", "animal", 0.3),  # no class named: does not vote
                   frame("f5", "blank", 0.9))
    assert event.species == "dog" and event.species_confidence == pytest.approx((0.1 + 0.6 + 0.7) / 3)
    assert event.kind_confidence == 0.9


def test_a_species_tie_goes_to_the_name_that_sorts_first_in_any_frame_order():
    one = frame("f1", "animal", 0.9, (("wolf", 0.7), ("fox", 0.3)))
    two = frame("f2", "animal", 0.9, (("fox", 0.7), ("wolf", 0.3)))
    event = form_events(frames_of([one, two]))[0]
    for order in ([one, two], [two, one]):
        answer = roll_up(Event(event.event_id, "cam", event.start, event.end, [f.path for f in order]),
                         {f.path: f for f in order})
        assert (answer.species, answer.species_confidence) == ("fox", 0.5)


def test_roll_up_on_the_real_frames(answers):
    events = {tuple(sorted(p.rsplit("/", 1)[-1] for p in e.frames)): e for e in event_answers(answers)}
    burst = next(e for names, e in events.items() if len(names) == 10)
    assert (burst.kind, burst.species, burst.counts["blank"], burst.counts["animal"]) == ("animal", "fox", 2, 8)
    assert events[("blank.jpg",)].kind == "blank" and events[("human.jpg",)].kind == "person"
    assert events[("vehicle.jpg",)].kind == "vehicle" and events[("ocelot.jpg",)].kind == "animal"
    elephants = events[("african_elephants.jpg", "african_elephants_truncated_file.jpg",
                        "african_elephants_with_exif_orientation.jpg")]
    assert (elephants.kind, elephants.species, elephants.counts["unreadable"]) == ("animal", "elephant", 1)


def test_a_frame_answer_that_cannot_be_right_is_refused():
    with pytest.raises(ValueError, match="kind 'cat' is not one of"):
        FrameAnswer("a.jpg", "", None, kind="cat")
    with pytest.raises(ValueError, match="needs its kind_confidence"):
        FrameAnswer("a.jpg", "", None, kind="person")
    with pytest.raises(ValueError, match="relative to the folder predicted"):
        FrameAnswer("C:\\cam\\a.jpg", "", None)
    with pytest.raises(ZoolensError, match="answered twice"):
        event_answers([FrameAnswer("a.jpg", "", None), FrameAnswer("a.jpg", "", None)])


# --- events CSV -----------------------------------------------------------------------------------------------------

def test_the_events_csv_has_one_row_per_event(answers, tmp_path):
    events = event_answers(answers)
    path = write_events_csv(events, tmp_path / "events.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == EVENT_CSV_COLUMNS and len(rows) == len(events)
    burst = next(row for row in rows if row["camera"] == BURST)
    assert burst == {"eventID": burst["eventID"], "camera": BURST, "start": "2021-04-11T20:43:09",
                     "end": "2021-04-11T20:43:15", "frames": "10", "kind": "animal", "kind_confidence": "0.9000",
                     "species": "fox", "species_confidence": "0.7500", "blank": "2", "animal": "8", "person": "0",
                     "vehicle": "0", "unreadable": "0"}
    timeless = [row for row in rows if row["start"] == ""]
    assert len(timeless) == 3 and all(row["frames"] == "1" for row in timeless)
    odd = [FrameAnswer("=cam/a.jpg", "=cam", T0, kind="blank", kind_confidence=0.9)]
    write_events_csv(event_answers(odd), tmp_path / "odd.csv")
    assert list(csv.DictReader(open(tmp_path / "odd.csv")))[0]["camera"] == "'=cam"
