"""A model as the library hands it over: a loaded model has what a freshly trained one has (its evaluation, its
history), says what it is, and is made of declared steps described by one record."""

import logging
import shutil

import pytest

import zoolens
from zoolens.errors import ZoolensError
from zoolens.inference.model import Model
from zoolens.inference.record import SUMMARY_FIGURES, EvaluationRecord


@pytest.fixture
def model_copy(trained_model, tmp_path):
    """The trained model's folder, copied, to damage."""
    return shutil.copytree(trained_model.path, tmp_path / "model")


def test_a_loaded_model_has_the_evaluation_and_history_it_was_trained_with(trained_model):
    loaded = Model.load(trained_model.path)
    assert isinstance(loaded.evaluation, EvaluationRecord)
    for name in (*SUMMARY_FIGURES, "images", "evaluated_on"):
        assert getattr(loaded.evaluation, name) == pytest.approx(getattr(trained_model.evaluation, name)), name
    assert {label: dict(row) for label, row in loaded.evaluation.per_class.items()} == trained_model.evaluation.per_class
    assert len(loaded.history) == len(trained_model.history)
    for read, kept in zip(loaded.history, trained_model.history):
        assert {k: v for k, v in read.items() if k != "phase"} == pytest.approx(
            {k: v for k, v in kept.items() if k != "phase"})
    assert [row["phase"] for row in loaded.history] == [row["phase"] for row in trained_model.history]
    assert isinstance(loaded.history[0]["epoch"], int)


@pytest.mark.parametrize("damage", ["missing", "not json", "a list", "no accuracy"])
def test_a_missing_or_damaged_evaluation_is_none_and_one_log_line(model_copy, damage, caplog):
    metrics = model_copy / "evaluation" / "metrics.json"
    if damage == "missing":
        shutil.rmtree(model_copy / "evaluation")
        (model_copy / "history.csv").unlink()
    else:
        metrics.write_text({"not json": "{accuracy: 1", "a list": "[1, 2]",
                            "no accuracy": '{"loss": 0.1, "images": 3}'}[damage])
        (model_copy / "history.csv").write_text("phase,epoch\nhead,1,extra\n")
    with caplog.at_level(logging.INFO, logger="zoolens"):
        model = Model.load(model_copy)
        assert model.evaluation is None and model.history is None
    lines = [r for r in caplog.records if "metrics.json" in r.getMessage()]
    assert len(lines) == 1 and str(metrics) in lines[0].getMessage()
    if damage != "missing":
        assert lines[0].levelno == logging.WARNING
    assert model.predict(sorted((model_copy.parent).glob("*.jpg"))) == []  # it still answers
    assert "test accuracy" not in repr(model)


def test_a_model_says_what_it_is(trained_model):
    loaded = Model.load(trained_model.path)
    accuracy = f"{100 * trained_model.evaluation.accuracy:.1f} %"
    assert repr(loaded) == (f"Model({str(trained_model.path)!r}, mobilenet_v2 frozen, 3 classes: cats, dogs, panda; "
                            f"test accuracy {accuracy})")


def test_train_names_an_option_it_does_not_know(small_animals, tmp_path):
    with pytest.raises(ZoolensError) as error:
        zoolens.train(small_animals, tmp_path / "m", epochz=3, progress=False)
    assert "'epochz' is not a setting" in str(error.value) and "epochs" in str(error.value)
    assert "\n" not in str(error.value) and not (tmp_path / "m").exists()


def test_a_model_is_its_fitted_steps_described_by_the_record_its_file_holds(trained_model):
    import dataclasses
    import json

    from zoolens.inference.record import ModelRecord

    loaded = Model.load(trained_model.path)
    assert [name for name, _ in loaded.steps] == ["features", "head", "calibration", "open_set"]
    written = json.loads((trained_model.path / "zoolens.json").read_text())
    assert loaded.meta == written == trained_model.meta
    assert ModelRecord.from_json(written).to_json() == written
    assert loaded.temperature == written["calibration"]["temperature"] == loaded.calibration.temperature
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.record.dropout = 0.1


def test_an_older_description_loads_and_what_it_recorded_is_kept(model_copy):
    import json

    described = json.loads((model_copy / "zoolens.json").read_text())
    del described["class_names"], described["calibration"]["fitted_on"]  # as zoolens wrote before it had them
    described["notes"] = {"from": "a newer zoolens"}
    (model_copy / "zoolens.json").write_text(json.dumps(described))
    model = Model.load(model_copy)
    assert model.meta["notes"] == {"from": "a newer zoolens"} and model.names == {}
    assert model.meta["calibration"] == {"temperature": described["calibration"]["temperature"]}


def test_the_steps_split_the_features_each_reads():
    import numpy as np

    from zoolens.data.transforms import Preprocessing
    from zoolens.inference.steps import FeatureStep
    from zoolens.runtime.features import FeatureExtractor

    own = FeatureExtractor("own", 3, Preprocessing(), lambda: None)
    beside = FeatureExtractor("beside", 2, Preprocessing(), lambda: None)
    features = np.arange(10, dtype=np.float32).reshape(2, 5)
    step = FeatureStep(own, beside)
    assert step.separate and step.extractor.members == (own, beside) and step.extractor.feature_dim == 5
    head, check = step.split(features)
    assert head.tolist() == [[0, 1, 2], [5, 6, 7]] and check.tolist() == [[3, 4], [8, 9]]
    alone = FeatureStep(own, own)
    assert not alone.separate and alone.extractor is own
    assert all(part is features for part in alone.split(features))
