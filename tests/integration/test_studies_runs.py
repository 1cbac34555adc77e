"""Studies (several runs on one split), k-fold cross validation, tuning and the seeds' scratch models, trained for
real. Their settings and refusals alone: tests/unit/test_studies.py."""

import csv
import json

import pytest
import yaml
from helpers import copy_subset

import zoolens
from zoolens.studies.kfold import run_kfold
from zoolens.studies.runner import run_study
from zoolens.studies.spec import load_study
from zoolens.studies.tune import run_tune


def write_spec(path, experiments, **extra):
    path.write_text(yaml.safe_dump({"name": "tiny", "experiments": experiments, **extra}))
    return path


def test_tiny_study_end_to_end_and_resumes(small_animals, tmp_path):
    spec_file = write_spec(tmp_path / "s.yaml", [
        {"name": "adam", "optimizer": "adam"},
        {"name": "sgd", "optimizer": "sgd", "lr": 0.01},
    ], split={"ratios": "70/10/20", "seed": 1})
    out = tmp_path / "study"
    rows = run_study(load_study(str(spec_file)), small_animals, out, progress=False)
    assert [r["experiment"] for r in rows] == ["adam", "sgd"]
    assert all(r["accuracy"] >= 0.85 for r in rows)
    table = list(csv.DictReader((out / "comparison.csv").open()))
    assert [t["optimizer"] for t in table] == ["adam", "sgd"]
    for chart in ("metrics.png", "accuracy_curves.png"):
        assert (out / chart).stat().st_size > 10_000
    splits = {json.loads((out / n / "zoolens.json").read_text())["data"]["counts"]["test"]["cats"] for n in ("adam", "sgd")}
    assert splits == {12}  # both runs on the same split

    stamps = {n: (out / n / "model.safetensors").stat().st_mtime_ns for n in ("adam", "sgd")}
    write_spec(spec_file, [{"name": "adam", "optimizer": "adam"}, {"name": "sgd", "optimizer": "sgd", "lr": 0.02}],
               split={"ratios": "70/10/20", "seed": 1})
    run_study(load_study(str(spec_file)), small_animals, out, progress=False)
    assert (out / "adam" / "model.safetensors").stat().st_mtime_ns == stamps["adam"]  # finished: not redone
    assert (out / "sgd" / "model.safetensors").stat().st_mtime_ns != stamps["sgd"]  # changed: redone


def test_kfold_reports_mean_and_std_and_keeps_the_best_fold(small_animals, tmp_path):
    import numpy as np

    from zoolens.data.split import read_manifest
    from zoolens.evaluation.evaluate import evaluate_samples

    summary = run_kfold(small_animals, tmp_path / "kf", k=3, progress=False)
    folds = summary["folds"]
    assert [row["fold"] for row in folds] == [1, 2, 3]
    accuracies = [row["accuracy"] for row in folds]
    assert summary["accuracy_mean"] == pytest.approx(np.mean(accuracies)) and summary["accuracy_mean"] >= 0.85
    assert summary["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert summary["f1_macro_mean"] == pytest.approx(np.mean([row["f1_macro"] for row in folds]))
    assert accuracies[summary["best_fold"] - 1] == max(accuracies)
    assert sorted(p.name for p in (tmp_path / "kf").iterdir() if p.is_dir()) == ["best"]
    best = zoolens.Model.load(tmp_path / "kf" / "best")
    assert best.classes == ["cats", "dogs", "panda"]
    # The model kept is the best fold's: on that fold's validation photos it scores what the table says.
    fold = read_manifest(tmp_path / "kf" / f"fold-{summary['best_fold']}.csv", small_animals)
    assert evaluate_samples(best, fold.part("val"), "best fold", progress=False).accuracy == pytest.approx(max(accuracies))
    assert summary["best_fold_test_accuracy"] == pytest.approx(best.meta["metrics"]["accuracy"])


def test_tune_picks_the_lowest_validation_loss(small_animals, tmp_path):
    summary = run_tune(small_animals, tmp_path / "tune", trials=3, method="random", progress=False)
    trials = list(csv.DictReader((tmp_path / "tune" / "trials.csv").open()))
    assert len(trials) == 3
    best_trial = min(trials, key=lambda t: float(t["val_loss"]))
    assert summary["best_val_loss"] == pytest.approx(float(best_trial["val_loss"]))
    assert summary["best_test_accuracy"] >= 0.85
    # The best trial's settings are the ones saved, and the best model was trained with them.
    saved = json.loads((tmp_path / "tune" / "best_config.json").read_text())["best_config"]
    assert saved == summary["best_config"] and set(saved) == {"optimizer", "lr", "dropout", "epochs"}
    assert saved["optimizer"] == best_trial["optimizer"] and int(saved["epochs"]) == int(best_trial["epochs"])
    assert saved["lr"] == pytest.approx(float(best_trial["lr"])) and saved["dropout"] == pytest.approx(float(best_trial["dropout"]))
    training = json.loads((tmp_path / "tune" / "best" / "zoolens.json").read_text())["training"]
    assert {key: training[key] for key in saved} == pytest.approx(saved)


def test_scratch_training_learns_and_reloads(small_animals, tmp_path):
    data = copy_subset(small_animals, tmp_path / "d", per_class=40)
    model = zoolens.train(data, tmp_path / "m", strategy="scratch", backbone="baseline_cnn", image_size=64,
                          epochs=4, progress=False)
    losses = [row["train_loss"] for row in model.history]
    assert [row["phase"] for row in model.history] == ["scratch"] * len(losses)
    assert losses[-1] < losses[0]
    reloaded = zoolens.Model.load(tmp_path / "m")
    assert reloaded.network.backbone.info.name == "baseline_cnn"
    photos = sorted((data / "panda").iterdir())[:5]
    again, before = reloaded.predict(photos, open_set="off"), model.predict(photos, open_set="off")
    assert [a.label for a in again] == [b.label for b in before]  # the same network, saved and loaded
    assert [a.confidence for a in again] == pytest.approx([b.confidence for b in before], abs=1e-5)
