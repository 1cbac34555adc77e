"""The camera-trap frame judge (zoolens.inference.frame_judge): each rule with a stand-in detector (a plain class
returning chosen boxes), then the real detector on the real frames with the conftest animals3 model (it knows none of
their species), then `zoolens predict --camera-traps` and `zoolens results` end to end, both validators passing."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from zoolens.inference.frame_judge import VEHICLE_CATEGORIES, FrameJudge, in_strip
from zoolens.inference.prediction import ERROR, NONE_OF_THESE, Prediction
from zoolens.models import open_set
from zoolens.models.available import imagenet_categories
from zoolens.runtime.animal_detector import Detection, available

NEEDS_DETECTOR = pytest.mark.skipif(not available() and os.environ.get("CI") != "true",
                                    reason="zamba and yolox-datamint are not installed (make setup installs them)")
BURST = "camtrap-dp-example/media"


class ByOrder:
    """A stand-in detector: the boxes (best first) of each image, in the order asked; it records the thresholds."""

    def __init__(self, per_image: list[list[Detection]]):
        self.per_image = per_image
        self.asked = []

    def detect(self, images, threshold=None):
        self.asked.append(threshold)
        return [list(boxes) for boxes in self.per_image[: len(images)]]


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def frame(camera_traps, name: str) -> Path:
    return camera_traps / "speciesnet-test" / name


def answer(path, label="dogs", reason=None) -> Prediction:
    if reason:
        return Prediction(str(path), None, 0.6, [("dogs", 0.6)], verdict=NONE_OF_THESE, reason=reason,
                          detail="it looks like a suit")
    return Prediction(str(path), label, 0.6, [(label, 0.6)])


def judged(model, path, boxes, prediction=None) -> Prediction:
    return FrameJudge(model, ByOrder([boxes])).judge([path], [prediction or answer(path)])[0]


BOX = Detection(0.3, 0.4, 0.2, 0.2, 0.4)  # in the middle of the frame


# --- each rule with chosen boxes ------------------------------------------------------------------------------------

def test_the_vehicle_categories_are_imagenet_categories():
    assert set(VEHICLE_CATEGORIES) <= set(imagenet_categories()) and len(set(VEHICLE_CATEGORIES)) == 42


def test_rule_1_an_unreadable_frame_has_no_kind_and_never_crashes(trained_model, camera_traps, tmp_path):
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(b"\xff\xd8\xff not a jpeg")
    error = Prediction(str(frame(camera_traps, "blank.jpg")), None, 0.0, error="damaged image", verdict=ERROR)
    detector = ByOrder([[BOX]])
    out = FrameJudge(trained_model, detector).judge([error.source, damaged], [error, answer(damaged)])
    assert [p.kind for p in out] == [None, None] and out[0] is error and out[1].label == "dogs"
    assert detector.asked == []  # nothing readable: the detector was not run


def test_rule_2_weak_boxes_and_boxes_in_the_logo_strips_do_not_count(trained_model, camera_traps):
    blank = frame(camera_traps, "blank.jpg")
    weak = judged(trained_model, blank, [Detection(0.3, 0.4, 0.2, 0.2, 0.09)])
    assert (weak.kind, round(weak.kind_confidence, 3)) == ("blank", 0.91)
    logo = Detection(0.0, 0.88, 0.3, 0.12, 0.8)  # wholly inside the bottom 15 %
    top = Detection(0.5, 0.0, 0.3, 0.14, 0.7)
    assert in_strip(logo) and in_strip(top) and not in_strip(Detection(0.0, 0.8, 0.3, 0.2, 0.8))
    stripped = judged(trained_model, blank, [logo, top])
    assert (stripped.kind, round(stripped.kind_confidence, 3)) == ("blank", 0.2)  # 1 - the best box, strips included
    kept = judged(trained_model, blank, [Detection(0.3, 0.4, 0.2, 0.2, 0.1)])
    assert (kept.kind, round(kept.kind_confidence, 3)) == ("animal", 0.1)


def test_rule_3_the_models_person_answer_makes_a_person_even_with_a_box(trained_model, camera_traps):
    blank = frame(camera_traps, "blank.jpg")
    person = judged(trained_model, blank, [BOX], answer(blank, reason=open_set.PERSON))
    assert person.kind == "person" and 0 < person.kind_confidence <= 1
    assert (person.verdict, person.reason) == (NONE_OF_THESE, open_set.PERSON)


def test_rule_4_a_box_is_an_animal_unless_its_crop_is_a_vehicle(trained_model, camera_traps):
    animal = judged(trained_model, frame(camera_traps, "domestic_dog.jpg"), [BOX])
    assert (animal.kind, animal.kind_confidence, animal.label) == ("animal", pytest.approx(0.4), "dogs")
    whole = Detection(0.0, 0.0, 1.0, 1.0, 0.3)
    vehicle = judged(trained_model, frame(camera_traps, "vehicle.jpg"), [whole])
    assert vehicle.kind == "vehicle" and vehicle.kind_confidence >= 0.5
    assert (vehicle.verdict, vehicle.reason, vehicle.label) == (NONE_OF_THESE, open_set.VEHICLE, None)
    without_imagenet = copy.copy(trained_model)
    without_imagenet.open_set = None  # a fine-tuned or scratch model: no ImageNet head, every box an animal
    assert judged(without_imagenet, frame(camera_traps, "vehicle.jpg"), [whole]).kind == "animal"


def test_rule_5_without_a_box_the_whole_frame_can_be_a_vehicle(trained_model, camera_traps):
    vehicle = judged(trained_model, frame(camera_traps, "vehicle.jpg"), [])
    assert vehicle.kind == "vehicle" and vehicle.kind_confidence >= 0.5 and vehicle.reason == open_set.VEHICLE


def test_rule_6_otherwise_blank_and_the_answer_says_no_animal(trained_model, camera_traps):
    blank = judged(trained_model, frame(camera_traps, "blank.jpg"), [])
    assert (blank.kind, blank.kind_confidence) == ("blank", 1.0)
    assert (blank.verdict, blank.reason, blank.label, blank.nearest) == (NONE_OF_THESE, open_set.NO_ANIMAL, None,
                                                                        "dogs")
    assert blank.describe() == "none of these: no animal in the photo"


def test_an_animal_the_model_said_had_no_animal_is_an_animal_unlike_any_training_photo(trained_model, camera_traps):
    path = frame(camera_traps, "ocelot.jpg")
    animal = judged(trained_model, path, [BOX], answer(path, reason=open_set.NO_ANIMAL))
    assert (animal.kind, animal.reason) == ("animal", open_set.UNLIKE_TRAINING)


# --- the real detector on the real frames ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def judge(trained_model):
    """One judge with the real detector for the module (its export takes ~20 s once a session)."""
    return FrameJudge(trained_model)


def kinds(judge, paths) -> dict[str, str]:
    predictions = judge.model.predict(paths)
    return {Path(p).name: (j.kind, j) for p, j in zip(paths, judge.judge(paths, predictions))}


@NEEDS_DETECTOR
def test_on_the_real_frames_empty_ones_are_blank_animals_animal_and_the_vehicle_a_vehicle(judge, camera_traps):
    speciesnet = kinds(judge, [frame(camera_traps, name) for name in ("blank.jpg", "blank2.jpg", "blank3.jpg",
                                                                      "vehicle.jpg", "human.jpg")])
    assert {name: kind for name, (kind, _) in speciesnet.items()} == {
        "blank.jpg": "blank", "blank2.jpg": "blank", "blank3.jpg": "blank", "vehicle.jpg": "vehicle",
        "human.jpg": "person"}  # rule 3's body (tests/test_person_in_frame.py)
    assert all(answer.reason == open_set.NO_ANIMAL for name, (_, answer) in speciesnet.items() if "blank" in name)
    ena24 = kinds(judge, sorted((camera_traps / "ena24").glob("*.jpg")))
    assert len(ena24) == 21 and sum(kind == "animal" for kind, _ in ena24.values()) >= 20  # measured: 21


@NEEDS_DETECTOR
def test_the_heron_burst_rolls_up_to_one_animal_event(judge, camera_traps):
    from zoolens.data.camera_trap import capture_time
    from zoolens.data.images import open_image
    from zoolens.inference.camera_trap_formats import FrameAnswer, event_answers

    paths = sorted((camera_traps / BURST).glob("*.JPG"))
    answers = []
    for path, (kind, judged_answer) in zip(paths, kinds(judge, paths).values()):
        time = capture_time(open_image(path)).time
        answers.append(FrameAnswer(path=path.name, camera="heron", time=time, kind=kind,
                                   kind_confidence=judged_answer.kind_confidence))
    assert sum(a.kind == "animal" for a in answers) >= 1  # measured: 1 of 10 (a white heron at night)
    (event,) = event_answers(answers)
    assert event.kind == "animal" and len(event.frames) == 10


@NEEDS_DETECTOR
def test_predict_with_camera_traps_then_results_pass_both_validators(trained_model, camera_traps, tmp_path, capsys):
    from helpers import PROJECT, frictionless_errors, md_validate

    from zoolens.cli import main

    traps = tmp_path / "traps"
    (traps / "cam1").mkdir(parents=True)
    (traps / "cam2").mkdir()
    for path in sorted((camera_traps / BURST).glob("*.JPG")):
        shutil.copyfile(path, traps / "cam1" / path.name)
    for name in ("blank.jpg", "blank3.jpg", "vehicle.jpg", "african_elephants_truncated_file.jpg"):
        shutil.copyfile(frame(camera_traps, name), traps / "cam2" / name)
    out = tmp_path / "r.parquet"
    assert main(["predict", str(trained_model.path), str(traps), "--out", str(out), "--camera-traps",
                 "--workers", "0"]) == 0
    assert json.loads((out / "_zoolens.json").read_text())["camera_traps"] is True
    (tmp_path / "deployments.csv").write_text("deploymentID,latitude,longitude\ncam1,51.496,4.774\ncam2,-2.3,34.8\n",
                                              encoding="utf-8")
    (tmp_path / "project.json").write_text(json.dumps(PROJECT), encoding="utf-8")
    capsys.readouterr()
    assert main(["results", str(out), "--megadetector", str(tmp_path / "md.json"), "--camtrap-dp",
                 str(tmp_path / "package"), "--deployments", str(tmp_path / "deployments.csv"), "--project",
                 str(tmp_path / "project.json"), "--timezone", "+02:00", "--events", str(tmp_path / "e.csv")]) == 0
    verdict = md_validate(tmp_path / "md.json", base=traps)
    assert verdict["errors"] == [] and verdict["warnings"] == []
    assert frictionless_errors(tmp_path / "package") == []
    images = {image["file"]: image for image in json.loads((tmp_path / "md.json").read_text())["images"]}
    assert images["cam2/blank.jpg"]["detections"] == [] and images["cam2/blank3.jpg"]["detections"] == []
    assert [d["category"] for d in images["cam2/vehicle.jpg"]["detections"]] == ["3"]
    assert images["cam2/african_elephants_truncated_file.jpg"]["detections"] is None
    events = list(csv.DictReader((tmp_path / "e.csv").open(encoding="utf-8")))
    assert [row["kind"] for row in events if row["camera"] == "cam1"] == ["animal"]  # the burst: one animal event

    # a resumed run must judge as the first did
    assert main(["predict", str(trained_model.path), str(traps), "--out", str(out), "--workers", "0"]) == 2
    assert "camera_traps" in capsys.readouterr().err


# --- rule 3b: a model trained with a blank class ------------------------------------------------------------------

def with_blank_class(model):
    """The conftest model as if its third class folder had been named `Empty` (the judge reads only the names)."""
    import dataclasses

    names = (*model.record.class_names[:-1], "Empty")
    return model.with_record(dataclasses.replace(model.record, classes=names, class_names=names))


def test_rule_3b_a_models_blank_class_is_the_blank_answer_unless_the_detector_is_sure(trained_model, camera_traps):
    model = with_blank_class(trained_model)
    path = frame(camera_traps, "domestic_dog.jpg")
    blank = judged(model, path, [Detection(0.3, 0.4, 0.2, 0.2, 0.3)], answer(path, "Empty"))
    assert (blank.kind, blank.kind_confidence) == ("blank", pytest.approx(0.6))
    assert (blank.verdict, blank.reason, blank.nearest) == (NONE_OF_THESE, open_set.NO_ANIMAL, "Empty")
    sure = judged(model, path, [Detection(0.3, 0.4, 0.2, 0.2, 0.7)], answer(path, "Empty"))
    assert (sure.kind, sure.verdict, sure.reason, sure.label) == ("animal", NONE_OF_THESE, open_set.UNLIKE_TRAINING,
                                                                  None)
    assert sure.kind_confidence == pytest.approx(0.7)


def test_rule_3b_an_animal_class_of_a_model_with_a_blank_class_needs_no_box(trained_model, camera_traps):
    path = frame(camera_traps, "blank.jpg")
    animal = judged(with_blank_class(trained_model), path, [], answer(path, "dogs"))
    assert (animal.kind, animal.label, animal.kind_confidence) == ("animal", "dogs", pytest.approx(0.6))
    assert judged(trained_model, path, [], answer(path, "dogs")).kind == "blank"  # without a blank class: rule 6


def test_a_model_without_an_imagenet_head_is_judged_with_a_line_saying_to_retrain(trained_model, camera_traps,
                                                                                   caplog):
    without_imagenet = copy.copy(trained_model)
    without_imagenet.open_set = None
    with caplog.at_level("WARNING"):
        blank = judged(without_imagenet, frame(camera_traps, "blank.jpg"), [])
    assert blank.kind == "blank"
    lines = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(lines) == 1 and "\n" not in lines[0] and "retrain it with zoolens train" in lines[0]
