"""Run a study: every experiment on the same split, each saved as a normal model bundle, resumable,
then one comparison table and the charts the seeds show."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from zoolens.data.corrections import corrected
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder, write_manifest
from zoolens.errors import ZoolensError
from zoolens.files import check_apart
from zoolens.inference.bundle import read_meta
from zoolens.plotting import plain_text, plt, save_figure
from zoolens.studies.spec import StudySpec
from zoolens.training.config import WHERE_IT_RUNS, TrainConfig
from zoolens.training.trainer import train

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["experiment", "backbone", "strategy", "optimizer", "image_size", "epochs_run", "accuracy",
                 "precision_macro", "recall_macro", "f1_macro", "loss", "train_seconds", "parameters"]
BAR_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def _finished(bundle: Path, config: TrainConfig, corrections_sha256: str | None = None) -> dict | None:
    """The saved description of a run already done with this very configuration (and the same corrections file's
    contents), else None."""
    if not (bundle / "zoolens.json").exists():
        return None
    try:
        meta = read_meta(bundle)  # validated: the study table formats its fields
    except ZoolensError:
        return None
    not_results = ("seconds", "epochs_run", "processes", "phases", *WHERE_IT_RUNS)
    recorded = {k: v for k, v in meta.get("training", {}).items() if k not in not_results}
    wanted = {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k not in not_results}
    same_corrections = ((meta.get("data") or {}).get("corrections") or {}).get("sha256") == corrections_sha256
    return meta if recorded == wanted and same_corrections and meta.get("metrics") else None


def _row(name: str, meta: dict, history: list[dict]) -> dict:
    training, metrics = meta["training"], meta["metrics"]
    return {
        "experiment": name,
        "backbone": training["backbone"],
        "strategy": training["strategy"],
        "optimizer": training["optimizer"],
        "image_size": meta["preprocessing"]["input_size"],
        "epochs_run": training["epochs_run"],
        **{k: round(float(metrics[k]), 4) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "loss")},
        "train_seconds": training["seconds"],
        "parameters": meta["parameters"],
        "history": history,
    }


def _read_history(bundle: Path) -> list[dict]:
    with open(bundle / "history.csv", newline="", encoding="utf-8") as handle:
        return [{k: (v if k == "phase" else float(v)) for k, v in row.items()} for row in csv.DictReader(handle)]


def run_study(spec: StudySpec, data: str | Path, out: str | Path, progress: bool = True,
              corrections: str | Path | None = None) -> list[dict]:
    """Every experiment of `spec` on one split of `data` (with `corrections` applied, recorded by each model)."""
    out = Path(out)
    check_apart(data, out)  # before anything is written: never among the photos, never around them
    out.mkdir(parents=True, exist_ok=True)
    manifest, applied = corrected(split_folder(scan_folder(data), spec.ratios, spec.seed), corrections)
    split_file = write_manifest(manifest, out / "split.csv")
    rows = []
    for number, experiment in enumerate(spec.experiments, 1):
        bundle = out / experiment.name
        config = TrainConfig(ratios=spec.ratios, seed=spec.seed, **experiment.options).on_one_device()
        meta = _finished(bundle, config, applied.sha256 if applied else None)
        header = f"[{number}/{len(spec.experiments)}] {experiment.name}"
        if meta is None:
            log.info("%s: %s, %s, %s", header, config.backbone, config.strategy, config.optimizer)
            model = train(data, bundle, config=config, split_file=split_file, corrections=corrections,
                          progress=progress)
            meta = model.meta
        else:
            log.info("%s: already done, kept", header)
        rows.append(_row(experiment.name, meta, _read_history(bundle)))
    write_comparison(rows, out, spec)
    return rows


def write_comparison(rows: list[dict], out: Path, spec: StudySpec) -> dict[str, Path]:
    written = {"csv": out / "comparison.csv", "markdown": out / "comparison.md"}
    with open(written["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    written["markdown"].write_text(comparison_markdown(rows, spec), encoding="utf-8")
    written["bars"] = plot_metric_bars(rows, out / "metrics.png", spec.name)
    written["curves"] = plot_accuracy_curves(rows, out / "accuracy_curves.png", spec.name)
    return written


def comparison_markdown(rows: list[dict], spec: StudySpec) -> str:
    lines = [f"# {spec.name}", "", spec.description, "", "| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "---|" * len(TABLE_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _score_axis_start(values: list[float]) -> float:
    """0, unless every score is high and close to the others: then the axis starts just below them,
    or runs that differ by a point would look identical."""
    low, high = min(values), max(values)
    if low < 0.5 or high - low > 0.15:
        return 0.0
    return float(np.floor((low - 0.05) * 20) / 20)


@plain_text
def plot_metric_bars(rows: list[dict], path: Path, title: str) -> Path:
    """Grouped bars: one group per experiment, one bar per metric (seed 003's comparison chart)."""
    figure, axis = plt.subplots(figsize=(max(6, 1.8 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    width = 0.8 / len(BAR_METRICS)
    for i, metric in enumerate(BAR_METRICS):
        values = [row[metric] for row in rows]
        bars = axis.bar(x + (i - (len(BAR_METRICS) - 1) / 2) * width, values, width, label=metric.replace("_", " "))
        axis.bar_label(bars, fmt="%.3f", fontsize=7, padding=2, rotation=90)
    axis.set_xticks(x, [row["experiment"] for row in rows], rotation=20, ha="right")
    bottom = _score_axis_start([row[m] for row in rows for m in BAR_METRICS])
    axis.set_ylim(bottom, 1.0 + 0.12 * (1.0 - bottom))
    axis.set_ylabel("test score" if bottom == 0 else f"test score (axis starts at {bottom:.2f})")
    axis.set_title(f"{title}: test metrics per experiment")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(BAR_METRICS), fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)


@plain_text
def plot_accuracy_curves(rows: list[dict], path: Path, title: str) -> Path:
    """Training (dashed) and validation (solid) accuracy per epoch of every run (seed 002, fig. 3)."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for row, color in zip(rows, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
        epochs = np.arange(1, len(row["history"]) + 1)
        axis.plot(epochs, [h["val_acc"] for h in row["history"]], color=color, marker="o", ms=3,
                  label=f"{row['experiment']} (validation)")
        axis.plot(epochs, [h["train_acc"] for h in row["history"]], color=color, ls="--", alpha=0.6,
                  label=f"{row['experiment']} (training)")
    axis.set_xlabel("epoch (head epochs first, then fine-tuning)")
    axis.set_ylabel("accuracy")
    axis.set_title(f"{title}: accuracy per epoch")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return save_figure(figure, path)
