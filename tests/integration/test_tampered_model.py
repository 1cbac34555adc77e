"""A tampered model folder is hostile input: every field of zoolens.json is checked against a schema, with limits,
before anything is built; the answer is one line naming the file and the field, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoolens.cli import main
from zoolens.errors import ZoolensError
from zoolens.inference.model import Model

META = "zoolens.json"


@pytest.fixture
def model_copy(trained_model, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(trained_model.path, target)
    return target


@pytest.fixture
def nothing_built(monkeypatch):
    """Building the network (10^6 classes took 5.9 GB) from a bad description fails the test."""
    def built(*args, **kwargs):
        raise AssertionError("a network was built from a description that should have been refused")
    import zoolens.models.backbones
    import zoolens.models.classifier

    monkeypatch.setattr(zoolens.models.backbones, "build_backbone", built)
    monkeypatch.setattr(zoolens.models.classifier, "Classifier", built)


def rewrite(folder: Path, change) -> None:
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    change(meta)
    (folder / META).write_text(json.dumps(meta), encoding="utf-8")  # NaN and Infinity as Python's json writes them


def write_raw(folder: Path, change, raw: str) -> None:
    """Set a field to JSON that json.dumps never writes (1e999): `change` puts a marker there, then raw text."""
    rewrite(folder, change)
    text = (folder / META).read_text(encoding="utf-8")
    (folder / META).write_text(text.replace('"@@"', raw, 1), encoding="utf-8")


def refused(folder: Path, *words: str) -> str:
    with pytest.raises(ZoolensError) as caught:
        Model.load(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / META}: "), message
    assert "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, message
    return message


def setter(*path, value):
    def change(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


INF, NAN = float("inf"), float("nan")
CASES = {
    "format_version_text": (setter("format_version", value="abc"), "format_version"),
    "classes_not_a_list": (setter("classes", value=3), "classes: must be a list"),
    "classes_repeated": (setter("classes", value=["cats", "dogs", "cats"]), "classes: must not repeat"),
    "class_not_a_string": (setter("classes", value=["cats", 2, "panda"]), "classes[1]: must be a string"),
    "too_many_classes": (setter("classes", value=[str(i) for i in range(100_001)]), "classes: must have at most"),
    "a_million_classes": (setter("classes", value=[str(i) for i in range(1_000_000)]), "classes"),
    "preprocessing_text": (setter("preprocessing", value="x"), "preprocessing: must be an object"),
    "mean_of_two": (setter("preprocessing", "mean", value=[0.5, 0.5]), "preprocessing.mean: must have at least 3"),
    "std_of_two": (setter("preprocessing", "std", value=[0.5, 0.5]), "preprocessing.std: must have at least 3"),
    "std_zero": (setter("preprocessing", "std", value=[0.229, 0, 0.225]), "preprocessing.std[1]: must be at least"),
    "mean_nan": (setter("preprocessing", "mean", value=[NAN, 0.4, 0.4]), "preprocessing.mean[0]: must be a finite"),
    "std_infinite": (setter("preprocessing", "std", value=[0.2, 0.2, INF]), "preprocessing.std[2]: must be a finite"),
    "input_size_0": (setter("preprocessing", "input_size", value=0), "preprocessing.input_size: must be at least 16"),
    "input_size_-5": (setter("preprocessing", "input_size", value=-5), "preprocessing.input_size: must be at least"),
    "input_size_100000": (setter("preprocessing", "input_size", value=100_000), "input_size: must be at most 1024"),
    "resize_size_0": (setter("preprocessing", "resize_size", value=0), "preprocessing.resize_size: must be at least"),
    "resize_size_-5": (setter("preprocessing", "resize_size", value=-5), "preprocessing.resize_size: must be at"),
    "resize_size_100000": (setter("preprocessing", "resize_size", value=100_000), "resize_size: must be at most"),
    "resize_below_input": (setter("preprocessing", "resize_size", value=17), "resize_size: must be at least input_size"),
    "dropout_5": (setter("head", "dropout", value=5), "head.dropout: must be less than 1"),
    "temperature_0": (setter("calibration", "temperature", value=0), "calibration.temperature: must be at least"),
    "temperature_-1": (setter("calibration", "temperature", value=-1), "calibration.temperature: must be at least"),
    "temperature_nan": (setter("calibration", "temperature", value=NAN), "calibration.temperature: must be a finite"),
    "temperature_inf": (setter("calibration", "temperature", value=INF), "calibration.temperature: must be a finite"),
    "backbone_not_a_dict": (setter("backbone", value="mobilenet_v2"), "backbone: must be an object"),
    "backbone_name_number": (setter("backbone", "name", value=3), "backbone.name: must be a string"),
    "training_seconds_text": (setter("training", "seconds", value="x"), "training.seconds: must be a number"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_bad_field_is_refused_before_anything_is_built(model_copy, nothing_built, case):
    change, words = CASES[case]
    rewrite(model_copy, change)
    refused(model_copy, words)


@pytest.mark.parametrize("change, raw, words", [
    (setter("format_version", value="@@"), "1e999", "format_version: must be a whole number, not inf"),
    (setter("calibration", "temperature", value="@@"), "1e999", "calibration.temperature: must be a finite number"),
    (setter("preprocessing", "mean", value=["@@", 0.4, 0.4]), "-1e999", "preprocessing.mean[0]: must be a finite"),
], ids=["format_version", "temperature", "mean"])
def test_numbers_too_large_for_a_float_are_refused(model_copy, nothing_built, change, raw, words):
    write_raw(model_copy, change, raw)
    refused(model_copy, words)


def test_json_nested_100000_deep(model_copy, nothing_built):
    text = (model_copy / META).read_text(encoding="utf-8").rstrip().rstrip("}")
    (model_copy / META).write_text(text + ', "notes": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    refused(model_copy, "nested too deeply")


def test_huge_description_is_refused_unread(model_copy, nothing_built):
    meta = json.loads((model_copy / META).read_text(encoding="utf-8"))
    meta["notes"] = "x" * 11_000_000
    (model_copy / META).write_text(json.dumps(meta), encoding="utf-8")
    refused(model_copy, "too large")


def test_description_linked_to_dev_zero_is_never_read(model_copy, nothing_built):
    (model_copy / META).unlink()
    (model_copy / META).symlink_to("/dev/zero")
    refused(model_copy, "not a regular file")


def test_a_valid_model_still_loads(model_copy):
    model = Model.load(model_copy)
    assert model.classes == ["cats", "dogs", "panda"] and 0.01 < model.temperature < 100


def test_a_model_folder_naming_two_classes_alike_still_shows_them_apart(model_copy):
    meta = json.loads((model_copy / META).read_text())
    meta["class_names"] = ["Dog", "Dog", "Dog (cats)"]
    (model_copy / META).write_text(json.dumps(meta))
    shown = [Model.load(model_copy).name(c) for c in ["cats", "dogs", "panda"]]
    assert len(set(shown)) == 3 and shown[:2] == ["Dog (cats)", "Dog (dogs)"]


def test_cli_names_the_file_and_field(model_copy, small_animals, capsys):
    rewrite(model_copy, setter("calibration", "temperature", value=-1))
    photo = sorted((small_animals / "cats").glob("*.jpg"))[0]
    assert main(["predict", str(model_copy), str(photo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"zoolens: error: {model_copy / META}: calibration.temperature: "), err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", [META, "model.safetensors", "open_set.safetensors"])
def test_fifo_in_the_model_folder_is_refused_not_waited_on(model_copy, small_animals, name):
    (model_copy / name).unlink()
    os.mkfifo(model_copy / name)
    photo = sorted((small_animals / "cats").glob("*.jpg"))[0]
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", "predict", str(model_copy), str(photo)],
                            capture_output=True, text=True, timeout=60)  # a reader blocked on the FIFO: TimeoutExpired
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"zoolens: error: {model_copy / name}: not a regular file (a FIFO, device, socket or folder)\n"
