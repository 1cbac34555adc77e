"""Studies (several runs on one split), k-fold cross validation, tuning, and the seeds' scratch models."""

import csv
import json
from collections import Counter

import pytest
import yaml
from helpers import copy_subset

import zoolens
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder
from zoolens.errors import ZoolensError
from zoolens.models.backbones import build_backbone
from zoolens.models.classifier import Classifier
from zoolens.studies.kfold import fold_manifests, run_kfold
from zoolens.studies.runner import run_study
from zoolens.studies.spec import load_study, preset_names
from zoolens.studies.tune import run_tune


def write_spec(path, experiments, **extra):
    path.write_text(yaml.safe_dump({"name": "tiny", "experiments": experiments, **extra}))
    return path


def test_presets_load_with_budgets_and_fall_back_to_offline_backbones():
    assert {"pretrained-vs-scratch", "frozen-vs-unfrozen", "bottleneck-vs-scratch"} <= set(preset_names())
    assert not any(name.startswith("seed") for name in preset_names())  # named by what they compare
    study = load_study("pretrained-vs-scratch", "small")
    by_name = {e.name: e.options for e in study.experiments}
    assert by_name["resnet18-scratch"]["backbone"] == "resnet18"  # scratch needs no weights
    assert by_name["pretrained-finetuned"]["backbone"] == "mobilenet_v2"  # no offline ResNet-18 weights
    assert by_name["resnet18-scratch"]["image_size"] == 64 and by_name["resnet18-scratch"]["epochs"] == 6
    assert by_name["pretrained-finetuned"]["epochs"] == 2
    assert load_study("pretrained-vs-scratch", "full").experiments[0].options["epochs"] == 20


def test_the_presets_former_seed_names_still_work():
    for former, preset in {"seed-002": "pretrained-vs-scratch", "seed-003": "frozen-vs-unfrozen",
                           "seed-004": "bottleneck-vs-scratch"}.items():
        assert load_study(former, "small") == load_study(preset, "small")


def test_the_backbones_preset_runs_every_registered_backbone_with_weights_here(monkeypatch):
    from zoolens.models.registry import REGISTRY, BackboneSpec
    from zoolens.studies import spec as study_spec

    study = load_study("backbones", "small")
    # `make setup` installs the weights of these four; the seeds' CNNs have none.
    assert [e.name for e in study.experiments] == ["frozen-mobilenet_v2", "frozen-efficientnet_lite0",
                                                   "frozen-efficientnet_lite1", "frozen-efficientnet_lite2"]
    assert all(e.options["strategy"] == "frozen" and e.options["image_size"] == 160 for e in study.experiments)
    # A backbone declared later is in the study with no change to it (its weights faked as available here).
    resnet50 = BackboneSpec("resnet50", "torchvision", REGISTRY["mobilenet_v2"].preprocessing)
    monkeypatch.setitem(REGISTRY, "resnet50", resnet50)
    monkeypatch.setattr(study_spec, "offline_weights_available", lambda name: name in ("resnet50", "mobilenet_v2"))
    assert [e.options["backbone"] for e in load_study("backbones").experiments] == ["mobilenet_v2", "resnet50"]


@pytest.mark.parametrize("experiments, message", [
    ([{"name": "a", "colour": "red"}], "unknown option"),
    ([{"name": "a"}, {"name": "a"}], "must be unique"),
    ([{"name": "a/b"}], "letters/digits"),
    ([], "list of experiments"),
])
def test_bad_study_files_get_one_clear_error(tmp_path, experiments, message):
    with pytest.raises(ZoolensError, match=message):
        load_study(str(write_spec(tmp_path / "s.yaml", experiments)))


def test_unknown_preset_or_budget(tmp_path):
    with pytest.raises(ZoolensError, match="no such study file or preset"):
        load_study("seed-999")
    with pytest.raises(ZoolensError, match="no budget"):
        load_study("frozen-vs-unfrozen", "huge")


@pytest.mark.slow
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


def test_folds_are_stratified_and_cover_every_photo_once(small_animals):
    manifest = split_folder(scan_folder(small_animals))
    folds = fold_manifests(manifest, 4, seed=0)
    pool = {s.path for s in manifest.part("train") + manifest.part("val")}
    seen = Counter(s.path for fold in folds for s in fold.part("val"))
    assert set(seen) == pool and set(seen.values()) == {1}
    for fold in folds:
        per_class = Counter(s.label for s in fold.part("val"))
        assert max(per_class.values()) - min(per_class.values()) <= 1
        assert {s.path for s in fold.part("test")} == {s.path for s in manifest.part("test")}
    with pytest.raises(ZoolensError, match="needs at least 60"):
        fold_manifests(manifest, 60, seed=0)


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_small_cnn_has_the_parameter_count_of_its_report():
    network = Classifier(build_backbone("small_cnn", pretrained=False), 3)
    assert sum(p.numel() for p in network.parameters()) == 3_454_147  # seed 001's model summary


@pytest.mark.slow
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


def test_scratch_only_models_refuse_pretrained_strategies(small_animals, tmp_path):
    with pytest.raises(ZoolensError, match="no pretrained weights"):
        zoolens.train(small_animals, tmp_path / "m", backbone="gap_cnn", strategy="frozen", progress=False)


def test_score_axis_starts_below_close_high_scores_and_at_zero_otherwise():
    from zoolens.studies.runner import _score_axis_start

    assert _score_axis_start([0.975, 0.982, 0.98]) == pytest.approx(0.90)
    assert _score_axis_start([0.44, 0.76]) == 0.0
    assert _score_axis_start([0.6, 0.99]) == 0.0
