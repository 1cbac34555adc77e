"""Stratified k-fold cross validation (seed 004): every non-test photo validates once; mean +- std of every
metric over the folds; the best fold's model is kept and judged on the untouched test part. Where the split is
grouped (camera-trap events, cameras, sites: data.grouping), so are the folds: a group validates in one fold only."""

from __future__ import annotations

import json
import logging
import numbers
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from zoolens.choices import Interval
from zoolens.data.corrections import corrected
from zoolens.data.folders import scan_folder
from zoolens.data.split import Manifest, split_folder, write_manifest
from zoolens.errors import ZoolensError, setting
from zoolens.evaluation.evaluate import evaluate_samples
from zoolens.files import check_apart
from zoolens.inference.bundle import check_model_target, move_model, remove_model
from zoolens.plotting import plain_text, plt, save_figure
from zoolens.training.config import TrainConfig
from zoolens.training.trainer import train

log = logging.getLogger(__name__)

FOLD_METRICS = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro")


def fold_manifests(manifest: Manifest, k: int, seed: int) -> list[Manifest]:
    pool = manifest.part("train") + manifest.part("val")
    test = [(sample, "test") for sample in manifest.part("test")]
    labels = [sample.label for sample in pool]
    smallest = min(labels.count(name) for name in set(labels))
    if smallest < k:
        raise ZoolensError(f"{manifest.root}: a class has only {smallest} photos outside the test part; "
                           f"{setting('k')} {k} needs at least {k} per class")
    if manifest.groups is None:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(pool)), labels)
    else:
        groups = [manifest.groups.of[sample.path] for sample in pool]
        if len(set(groups)) < k:
            raise ZoolensError(f"{manifest.root}: only {len(set(groups))} {manifest.groups.by}s outside the test part; "
                               f"{setting('k')} {k} needs at least {k} (a {manifest.groups.by} validates in one fold)")
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(pool)), labels,
                                                                                      groups)
    return [
        Manifest(manifest.root, manifest.classes,
                 [(pool[i], "train") for i in train_idx] + [(pool[i], "val") for i in val_idx] + test,
                 groups=manifest.groups)
        for train_idx, val_idx in folds
    ]


def run_kfold(data: str | Path, out: str | Path, k: int = 5, config: TrainConfig | None = None,
              progress: bool = True, corrections: str | Path | None = None) -> dict:
    config = (config or TrainConfig()).on_one_device()
    Interval(numbers.Integral, 2, None, closed="left").check("k", k)
    out = Path(out)
    check_apart(data, out)  # before anything is written: never among the photos, never around them
    for name in ["best", *(f"fold-{number}" for number in range(1, k + 1))]:
        check_model_target(out / name)  # a folder of the user's there is never replaced
    out.mkdir(parents=True, exist_ok=True)
    manifest, _ = corrected(split_folder(scan_folder(data), config.ratios, config.seed, config.group_by,
                                         config.sequence_gap), corrections)
    if manifest.grouping:
        log.info("%s", manifest.grouping)
    rows = []
    for number, fold in enumerate(fold_manifests(manifest, k, config.seed), 1):
        log.info("[fold %d/%d]", number, k)
        split_file = write_manifest(fold, out / f"fold-{number}.csv")
        model = train(data, out / f"fold-{number}", config=config, split_file=split_file, corrections=corrections,
                      progress=progress)
        validation = evaluate_samples(model, fold.part("val"), f"fold {number}", progress=False).summary()
        rows.append({"fold": number, **{m: float(validation[m]) for m in FOLD_METRICS},
                     "test_accuracy": float(model.meta["metrics"].get("accuracy", np.nan))})
    summary = _summarise(rows)
    best = max(rows, key=lambda row: row["accuracy"])["fold"]
    _keep_only_best(out, k, best)
    summary.update({"k": k, "folds": rows, "best_fold": best, "best_model": str(out / "best"),
                    "best_fold_test_accuracy": rows[best - 1]["test_accuracy"]})
    (out / "kfold.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_folds(rows, out / "kfold.png")
    return summary


def _summarise(rows: list[dict]) -> dict:
    return {f"{m}_{stat}": float(getattr(np, stat)([row[m] for row in rows])) for m in FOLD_METRICS
            for stat in ("mean", "std")}


def _keep_only_best(out: Path, k: int, best: int) -> None:
    """The best fold's model becomes OUT/best (replacing only zoolens's files of a model there); the other folds'
    models are removed, their folders too when nothing else is in them."""
    move_model(out / f"fold-{best}", out / "best")
    for number in range(1, k + 1):
        if number != best:
            remove_model(out / f"fold-{number}")


def format_kfold(summary: dict) -> str:
    lines = [f"{summary['k']}-fold cross validation (validation fold of each run):"]
    lines += [f"  fold {row['fold']}: accuracy {row['accuracy']:.4f}  loss {row['loss']:.4f}  "
              f"F1 {row['f1_macro']:.4f}" for row in summary["folds"]]
    lines += [f"  {m:<16} {summary[m + '_mean']:.4f} +- {summary[m + '_std']:.4f}" for m in FOLD_METRICS]
    lines.append(f"best fold {summary['best_fold']} kept as {summary['best_model']}: "
                 f"test accuracy {summary['best_fold_test_accuracy']:.4f}")
    return "\n".join(lines)


@plain_text
def plot_folds(rows: list[dict], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(max(5, 0.7 * len(rows) + 3), 4))
    accuracies = [row["accuracy"] for row in rows]
    axis.bar([f"fold {row['fold']}" for row in rows], accuracies, color="#4c72b0")
    mean, std = np.mean(accuracies), np.std(accuracies)
    axis.axhline(mean, color="black", lw=1, label=f"mean {mean:.3f} +- {std:.3f}")
    axis.set_ylim(max(0.0, min(accuracies) - 0.1), 1.0)
    axis.set_ylabel("validation accuracy")
    axis.set_title("Cross validation: accuracy on each held-out fold")
    axis.legend(loc="lower right")  # the bars reach the top
    return save_figure(figure, path)
