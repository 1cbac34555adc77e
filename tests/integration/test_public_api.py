"""The API a notebook user guesses: `dir(zoolens)` and `from zoolens import *` give the public names and each one
resolves; `list_backbones()` says what `zoolens models` says; a trained Model, the ImageNetClassifier and the dog-breed
app are one `Predictor`, with one top-k default (3) and readable reprs."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import zoolens
from zoolens.inference.prediction import ERROR, NONE_OF_THESE
from zoolens.inference.predictor import Predictor


@pytest.fixture(scope="module")
def imagenet():
    return zoolens.ImageNetClassifier()


@pytest.fixture(scope="module")
def dog_app(trained_model, imagenet):
    from zoolens.apps.dogs import DogBreedApp

    return DogBreedApp(trained_model, imagenet=imagenet)  # any model stands in for the breeds model here


@pytest.fixture(scope="module")
def predictors(trained_model, imagenet, dog_app) -> dict:
    return {"Model": trained_model, "ImageNetClassifier": imagenet, "DogBreedApp": dog_app}


def test_import_and_list_backbones_load_no_heavy_library():
    """`import zoolens` imports neither NumPy nor PyTorch, and `list_backbones()` (as `zoolens models`) no PyTorch."""
    probe = ("import sys, zoolens\n"
             "print('numpy' in sys.modules, 'torch' in sys.modules)\n"
             "records = zoolens.list_backbones()\n"
             "print('torch' in sys.modules, len(records))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", str(len(zoolens.list_backbones()))]


# ---- one predictor protocol -------------------------------------------------------------------------------------
def test_model_imagenet_and_the_dog_app_are_predictors(predictors):
    for name, predictor in predictors.items():
        assert isinstance(predictor, Predictor), name
        assert isinstance(predictor, zoolens.Predictor) and predictor.classes, name
    assert not isinstance(object(), Predictor)
    from zoolens.apps.common import Predictor as AppsPredictor  # the web and desktop apps' model-or-ImageNet

    assert isinstance(AppsPredictor(None), Predictor)


def test_every_predictor_gives_three_classes_by_default(predictors, chelsea):
    for name, predictor in predictors.items():
        assert inspect.signature(predictor.predict).parameters["top_k"].default == 3, name
        (answer,) = predictor.predict(chelsea)
        assert answer.source == str(chelsea) and len(answer.top) == 3, (name, answer)
        (fewer,) = predictor.predict([chelsea], top_k=2)
        assert len(fewer.top) == 2, name
    (cat,) = predictors["ImageNetClassifier"].predict(chelsea)
    assert cat.label == "cat" and cat.detail == f"most likely {cat.top[0][0]}"


def test_the_dog_app_answers_as_a_predictor(dog_app, chelsea, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    cat, unreadable = dog_app.predict([chelsea, broken])
    assert cat.verdict == NONE_OF_THESE and cat.reason == "no dog in the photo"
    assert cat.describe() == "none of these: no dog in the photo (it looks like a cat)"
    assert {label for label, _ in cat.top} == set(dog_app.classes)  # the breeds' scores, not the answer
    assert unreadable.verdict == ERROR and unreadable.source == str(broken)


def test_predictors_have_readable_reprs(imagenet, dog_app, trained_model):
    from zoolens.models.imagenet_groups import group_indices

    assert repr(imagenet) == "ImageNetClassifier(backbone='mobilenet_v2': 1000 ImageNet classes in " \
                             f"{len(group_indices())} animal groups, 224 px)"
    assert repr(dog_app) == (f"DogBreedApp(3 breeds from {trained_model.path}, dog detector: ImageNet mobilenet_v2, "
                             "min_confidence=0.6, open_set='on')")
