"""Hyper-parameter search with Optuna: optimizer, learning rate, dropout and epochs, judged on the
validation part only; the test part judges the winner once, beside the default configuration."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace
from pathlib import Path

from zoolens.choices import OneOf, Optimizer, TuneMethod, plain
from zoolens.data.corrections import corrected
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder, write_manifest
from zoolens.errors import require_extra
from zoolens.files import check_apart
from zoolens.training.config import TrainConfig
from zoolens.training.trainer import train

log = logging.getLogger(__name__)

GRID = {
    "optimizer": [Optimizer.ADAM.value, Optimizer.RMSPROP.value, Optimizer.SGD.value],
    "lr": [3e-4, 1e-3, 3e-3, 1e-2],
    "dropout": [0.2, 0.5],
}
EPOCH_CHOICES = [20, 60]


def searched_settings(method: str) -> tuple[str, ...]:
    """The TrainConfig fields a search chooses for each trial (what it is given for them would be ignored)."""
    return tuple(GRID) if method == TuneMethod.GRID else (*GRID, "epochs")


def _suggest(trial, method: str) -> dict:
    if method == TuneMethod.GRID:
        return {name: trial.suggest_categorical(name, values) for name, values in GRID.items()}
    return {
        "optimizer": trial.suggest_categorical("optimizer", GRID["optimizer"]),
        "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.7),
        "epochs": trial.suggest_categorical("epochs", EPOCH_CHOICES),
    }


def _sampler(method: str, seed: int):
    import optuna

    if method == TuneMethod.GRID:
        return optuna.samplers.GridSampler(GRID, seed=seed)
    if method == TuneMethod.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run_tune(data: str | Path, out: str | Path, trials: int = 20, method: str = TuneMethod.TPE,
             config: TrainConfig | None = None, progress: bool = True, corrections: str | Path | None = None) -> dict:
    OneOf(TuneMethod).check("method", method)
    require_extra("optuna", "studies", "zoolens tune")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = (config or TrainConfig()).on_one_device()
    out = Path(out)
    check_apart(data, out)  # before any trial: never among the photos, never around them
    out.mkdir(parents=True, exist_ok=True)
    manifest, _ = corrected(split_folder(scan_folder(data), config.ratios, config.seed), corrections)
    split_file = write_manifest(manifest, out / "split.csv")
    if method == TuneMethod.GRID:
        trials = min(trials, len(GRID["optimizer"]) * len(GRID["lr"]) * len(GRID["dropout"]))
    records = []

    def objective(trial) -> float:
        options = _suggest(trial, method)
        model = train(data, None, config=replace(config, **options), split_file=split_file, corrections=corrections,
                      progress=False)
        best = min(model.history, key=lambda row: row["val_loss"])
        records.append({"trial": trial.number + 1, **options, "val_loss": best["val_loss"], "val_acc": best["val_acc"]})
        log.info("  trial %d/%d: %s -> val_loss %.4f val_acc %.4f", trial.number + 1, trials, options,
                 best["val_loss"], best["val_acc"])
        return best["val_loss"]

    study = optuna.create_study(direction="minimize", sampler=_sampler(method, config.seed))
    study.optimize(objective, n_trials=trials)
    best_options = dict(study.best_params)
    best_model = train(data, out / "best", config=replace(config, **best_options), split_file=split_file,
                       corrections=corrections,
                       progress=progress)
    default_model = train(data, None, config=config, split_file=split_file, progress=False)
    summary = {
        "method": plain(method),
        "trials": len(records),
        "best_config": best_options,
        "best_val_loss": study.best_value,
        "best_test_accuracy": best_model.meta["metrics"]["accuracy"],
        "default_test_accuracy": default_model.meta["metrics"]["accuracy"],
        "default_val_loss": min(row["val_loss"] for row in default_model.history),
        "best_model": str(out / "best"),
    }
    _write_trials(records, out / "trials.csv")
    (out / "best_config.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _write_trials(records: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for record in records for key in record))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: r["val_loss"]))


def format_tune(summary: dict) -> str:
    return (f"{summary['trials']} trials ({summary['method']}), judged on validation loss\n"
            f"best: {summary['best_config']}  val_loss {summary['best_val_loss']:.4f}\n"
            f"test accuracy: best {summary['best_test_accuracy']:.4f}, default {summary['default_test_accuracy']:.4f} "
            f"(default val_loss {summary['default_val_loss']:.4f})\n"
            f"best model saved as {summary['best_model']}")
