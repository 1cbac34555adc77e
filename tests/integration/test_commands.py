"""Commands as a user types them, for the features whose Python API is tested elsewhere: training on a manifest
from `zoolens data split`, `zoolens study`, `zoolens tune`, `zoolens kfold`, and `zoolens predict --engine ray`."""

import csv
import json
import subprocess
import sys

import pytest
import yaml
from helpers import copy_subset

# Slow: each runs `zoolens` in a new process: seconds of imports apiece


def zoolens(*args, timeout=600):
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_on_a_manifest_from_data_split_uses_exactly_its_parts(small_animals, tmp_path):
    manifest = tmp_path / "split.csv"
    zoolens("data", "split", small_animals, "--ratios", "60/20/20", "--seed", "3", "--out", manifest)
    zoolens("train", small_animals, "--split", manifest, "--out", tmp_path / "m", "--epochs", "5", "--quiet")
    given = {(row["path"], row["split"]) for row in read_csv(manifest)}
    assert {(row["path"], row["split"]) for row in read_csv(tmp_path / "m" / "split.csv")} == given
    meta = json.loads((tmp_path / "m" / "zoolens.json").read_text())
    tests = sum(1 for _, part in given if part == "test")
    assert tests == 36 and meta["metrics"]["images"] == tests  # evaluated on the manifest's test part
    assert sum(meta["data"]["counts"]["val"].values()) == sum(1 for _, part in given if part == "val") == 36


def test_study_command_writes_its_table_and_charts(small_animals, tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump({"name": "two", "experiments": [{"name": "adam", "epochs": 5},
                                                                   {"name": "sgd", "optimizer": "sgd", "lr": 0.01,
                                                                    "epochs": 5}]}))
    zoolens("study", spec, "--data", small_animals, "--out", tmp_path / "s", "--quiet")
    table = read_csv(tmp_path / "s" / "comparison.csv")
    assert [(row["experiment"], row["optimizer"]) for row in table] == [("adam", "adam"), ("sgd", "sgd")]
    for row in table:
        saved = json.loads((tmp_path / "s" / row["experiment"] / "zoolens.json").read_text())
        assert float(row["accuracy"]) == pytest.approx(saved["metrics"]["accuracy"], abs=1e-4)
    assert all((tmp_path / "s" / chart).stat().st_size > 10_000 for chart in ("metrics.png", "accuracy_curves.png"))


def test_tune_command_saves_the_best_trial(small_animals, tmp_path):
    zoolens("tune", small_animals, "--out", tmp_path / "t", "--trials", "2", "--method", "random", "--quiet")
    trials = read_csv(tmp_path / "t" / "trials.csv")
    best = min(trials, key=lambda row: float(row["val_loss"]))
    saved = json.loads((tmp_path / "t" / "best_config.json").read_text())
    assert len(trials) == 2 and saved["best_config"]["optimizer"] == best["optimizer"]
    assert saved["best_val_loss"] == pytest.approx(float(best["val_loss"]))
    trained_with = json.loads((tmp_path / "t" / "best" / "zoolens.json").read_text())["training"]
    assert trained_with["optimizer"] == best["optimizer"]


def test_kfold_command_prints_and_saves_every_fold(small_animals, tmp_path):
    data = copy_subset(small_animals, tmp_path / "d", per_class=30)
    result = zoolens("kfold", data, "--k", "3", "--out", tmp_path / "cv", "--epochs", "5", "--quiet")
    summary = json.loads((tmp_path / "cv" / "kfold.json").read_text())
    assert [row["fold"] for row in summary["folds"]] == [1, 2, 3]
    assert f"{summary['accuracy_mean']:.4f} +- {summary['accuracy_std']:.4f}" in result.stdout
    assert (tmp_path / "cv" / "best" / "zoolens.json").exists()


def test_predict_with_the_ray_engine_from_the_command_line(trained_model, other_animals, tmp_path):
    photos = copy_subset(other_animals, tmp_path / "photos", per_class=4)
    zoolens("predict", trained_model.path, photos, "--out", tmp_path / "local", "--workers", "0")
    zoolens("predict", trained_model.path, photos, "--out", tmp_path / "ray", "--engine", "ray", "--concurrency", "1")
    import pyarrow.parquet as pq

    local = {row["path"]: row for row in pq.read_table(tmp_path / "local").to_pylist()}
    ray = pq.read_table(tmp_path / "ray").to_pylist()
    assert len(ray) == len(local) == 12
    for row in ray:
        assert row["label"] == local[row["path"]]["label"]
        assert row["confidence"] == pytest.approx(local[row["path"]]["confidence"], abs=1e-4)
