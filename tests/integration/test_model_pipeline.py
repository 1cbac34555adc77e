"""A model as the library hands it over: a loaded model has what a freshly trained one has (its evaluation, its
history), says what it is, and is made of declared steps described by one record."""

import logging
import shutil

import pytest

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
