"""One self-contained HTML page per model: data, training, metrics, confusions, the photos it does not know
("none of these"), and Grad-CAM galleries.

Every picture is embedded (PNG figures, ~224-256 px JPEG thumbnails), there are no scripts or links,
so the file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import logging
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from zoolens import __version__
from zoolens.data.images import ImageError, open_image
from zoolens.errors import ZoolensError, setting
from zoolens.evaluation.verdict import probably_mislabelled, verdict
from zoolens.files import check_apart, lies_inside, read_json
from zoolens.plotting import plain_text
from zoolens.progress import showing, shown

log = logging.getLogger(__name__)

GALLERY_SIZE = 12
OPEN_SET_SHOWN = 12  # photos per open-set gallery
THUMBNAIL_SIZE = 256
FIGURE_WIDTH = 1000  # px; wider figures are scaled down before embedding


# ---- embedding -------------------------------------------------------------------------------------
def data_uri(image: Image.Image, format: str = "JPEG", max_side: int | None = None) -> str:
    image = image.convert("RGB") if format == "JPEG" else image
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if format == "JPEG":
        image.save(buffer, "JPEG", quality=82, optimize=True)
    else:
        image.save(buffer, "PNG", optimize=True)
    return f"data:image/{format.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def figure_uri(path: Path, format: str = "PNG") -> str:
    """A figure on disk, scaled to the page width (read like any photo: it may come from a model folder sent to us)."""
    image = open_image(path)
    if image.width > FIGURE_WIDTH:
        size = (FIGURE_WIDTH, round(image.height * FIGURE_WIDTH / image.width))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return data_uri(image, format)


def photo_figure_uri(path: Path) -> str:
    """A figure made of photos (an image grid), as JPEG: a fraction of PNG's size."""
    return figure_uri(path, "JPEG")


def _plotted(plot, *args, **kwargs) -> str:
    """Run one of the plots helpers (which write a PNG file) and embed what it drew."""
    with tempfile.TemporaryDirectory() as scratch:
        return figure_uri(plot(*args, Path(scratch) / "figure.png", **kwargs))


# ---- the page's parts --------------------------------------------------------------------------------
def _percent(value) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.1%}"


def _file_size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def model_card(model) -> dict:
    meta = model.meta
    training = meta.get("training", {})
    prep = model.preprocessing
    info = model.network.backbone.info
    weights = model.path / "model.safetensors" if model.path else None
    parameters = sum(p.numel() for p in model.network.parameters())
    head = sum(p.numel() for p in model.network.head.parameters())
    strategy = training.get("strategy")
    how = {
        "frozen": "frozen backbone features + a trained dense head",
        "finetune": "dense head, then the backbone fine-tuned",
        "scratch": "the whole network trained from random initialisation",
    }.get(strategy, strategy or "unknown")
    facts = [
        ("model folder", str(model.path) if model.path else "(not saved)"),
        ("backbone", f"{info.name} ({info.source}, weights {info.weights_tag})"),
        ("input", f"{prep.input_size} × {prep.input_size} px centre crop of the photo resized to {prep.resize_size} px "
                  f"(shorter side); mean {tuple(round(v, 3) for v in prep.mean)}, std {tuple(round(v, 3) for v in prep.std)}"),
        ("classes", ", ".join(model.name(c) for c in model.classes)),
        ("parameters", f"{parameters:,} ({head:,} in the dense head)"),
        ("file size", _file_size(weights) if weights and weights.exists() else "–"),
        ("trained", meta.get("created", "unknown")),
        ("how", how),
        ("training time", f"{training['seconds']:.0f} s, {training.get('epochs_run', '?')} epochs"
         if "seconds" in training else "–"),
        ("trained on", meta.get("data", {}).get("root", "unknown")),
        ("calibration", f"temperature {model.temperature:.3g} "
                        f"(fitted on the {meta.get('calibration', {}).get('fitted_on', 'validation part')})"),
        ("zoolens version", meta.get("zoolens_version", "unknown")),
    ]
    return {"backbone": info.name, "facts": facts}


def _phase_text(phase: dict) -> str:
    """One phase of the recorded strategy, as a sentence: what trained, on what, how fast and how long."""
    unfreeze = phase.get("unfreeze")
    trained = "" if unfreeze is None else (
        f"the last {unfreeze} blocks and the head, " if unfreeze else "the whole network, ")
    kept = ", kept only where it beat the network it started from" if phase.get("must_beat_start") else ""
    return (f"{phase.get('name')} on {phase.get('on')}: {trained}learning rate {phase.get('lr')}, at most "
            f"{phase.get('epochs')} epochs, patience {phase.get('patience')}{kept}")


def training_rows(meta: dict) -> list[tuple[str, str]]:
    rows = []
    training = meta.get("training", {})
    for key, value in training.items():
        if key in ("seconds", "epochs_run"):
            continue
        if key == "phases":
            value = "; ".join(_phase_text(p) for p in value if isinstance(p, dict))
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        if value is None:  # lr and epochs are resolved per phase; the others' defaults are not recorded
            value = "default (see phases)" if key in ("lr", "epochs") and training.get("phases") else "default"
        rows.append((key.replace("_", " "), str(value)))
    return rows


def _counts_table(classes: list[str], counts: dict[str, dict[str, int]],
                  names: dict[str, str]) -> tuple[list[str], list[dict]]:
    parts = list(counts)
    grand = sum(sum(part.values()) for part in counts.values()) or 1
    rows = []
    for label in classes:
        row = [int(counts[part].get(label, 0)) for part in parts]
        rows.append({"name": names.get(label, label), "counts": row, "share": f"{sum(row) / grand:.1%}"})
    rows.append({"name": "total", "counts": [sum(counts[p].values()) for p in parts],
                 "share": "100%"})
    return parts, rows


@plain_text
def plot_image_sizes(widths: list[int], heights: list[int], path: Path) -> Path:
    from zoolens.plotting import plt, save_figure

    figure, axis = plt.subplots(figsize=(4.6, 4))
    axis.scatter(widths, heights, s=6, alpha=0.35)
    axis.set_xlabel("width (px)")
    axis.set_ylabel("height (px)")
    axis.set_title(f"Image sizes ({len(widths)} photos)")
    axis.grid(alpha=0.3)
    return save_figure(figure, path)


def dataset_section(model, data: Path | None, summary) -> dict:
    from zoolens.data.inspect import plot_class_balance, size_stats

    if summary is not None:
        parts, rows = _counts_table(summary.classes, summary.counts, summary.names)
        stats = size_stats(summary.widths, summary.heights)
        facts = []
        if stats:
            w, h = stats["width"], stats["height"]
            facts += [("width", f"{w['min']}–{w['max']} px (median {w['median']:.0f})"),
                      ("height", f"{h['min']}–{h['max']} px (median {h['median']:.0f})")]
        facts += [
            ("modes", ", ".join(f"{m} {n}" for m, n in sorted(summary.modes.items(), key=lambda x: -x[1]))),
            ("exact duplicates", f"{len(summary.duplicates)} group(s)"),
        ]
        return {
            "note": f"{summary.root}: {len(summary.widths)} usable photos in {len(summary.classes)} classes.",
            "parts": parts,
            "rows": rows,
            "facts": facts,
            "balance_chart": _plotted(plot_class_balance, summary),
            "size_chart": _plotted(plot_image_sizes, summary.widths, summary.heights) if summary.widths else None,
            "problems": list(summary.unreadable) + list(summary.skipped),
        }
    recorded = model.meta.get("data", {})
    counts = recorded.get("counts") or {}
    root = recorded.get("root", "unknown")
    note = (f"No data folder: the training folder {root} is not here (pass --data to see the photos). "
            "Counts as recorded at training time.")
    if not counts:
        return {"note": note, "parts": [], "rows": [], "facts": [], "balance_chart": "", "size_chart": None,
                "problems": []}
    parts, rows = _counts_table(model.classes, counts, model.names)
    recorded_summary = SimpleNamespace(classes=model.classes, counts=counts, names=model.names)
    problems = [(p["path"], p["reason"]) for p in recorded.get("skipped", [])]
    return {"note": note, "parts": parts, "rows": rows, "facts": [],
            "balance_chart": _plotted(plot_class_balance, recorded_summary), "size_chart": None, "problems": problems}


LABEL_SHOTS = 8


def shown_name(path: str) -> str:
    """A file name as the page can hold it: a byte that is not UTF-8 (a lone surrogate) shown as `\\xe9`."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def labels_section(model, data: Path | None) -> dict:
    """What `zoolens data issues` finds in the data the model was trained on, judged on the model's own split (its
    split.csv, corrections applied): likely mislabelled photos, copies across the split, outliers; and the
    corrections the model was trained with."""
    record = (model.meta.get("data") or {}).get("corrections")
    corrections = (f"Trained with {record['relabelled']} photo(s) relabelled and {record['excluded']} left out by "
                   f"{Path(record['file'] or '').name} (SHA-256 {record['sha256'][:12]}…)." if record else
                   "Trained on the labels as the folder gives them (no corrections file).")
    section = {"corrections": corrections, "checked": False}
    if data is None:
        return {**section, "note": "Not checked: the training photos are not here (pass --data)."}
    from zoolens.evaluation.data_issues import find_data_issues, suggested_fixes

    split = model.path / "split.csv" if model.path else None
    trained_on = (model.meta.get("data") or {}).get("root")
    if split is None or not split.exists() or trained_on is None or Path(trained_on) != data.resolve():
        split = None  # another folder than the training one: judged on the split `zoolens train` would make of it

    try:
        issues = find_data_issues(data, split_file=split)  # its bar as the report's `progress.showing` says
    except ZoolensError as error:
        return {**section, "note": f"Not checked: {error}"}
    shots = []
    for row in issues.label_issues[:LABEL_SHOTS]:
        try:
            photo = data_uri(open_image(data / row.path, min_side=256), max_side=256)
        except ImageError:
            continue
        shots.append({"photo": photo, "file": shown_name(row.path), "given": model.name(row.given),
                      "suggested": model.name(row.suggested), "score": _percent(row.score)})
    leaks = issues.leaks
    fixes = suggested_fixes(issues)
    relabels = sum(fix.action == "relabel" for fix in fixes)
    split_name = "this model’s split" if split else "a 70/10/20 split"
    return {**section, "checked": True, "shots": shots, "mislabelled": len(issues.label_issues),
            "photos": len(issues.paths), "leaks": [(shown_name(row.path_a), row.part_a, shown_name(row.path_b), row.part_b)
                                                   for row in leaks[:10]],
            "leak_count": len(leaks), "outliers": len(issues.outliers),
            "note": f"{len(issues.paths)} photos of {data.name}/ judged by five heads that each never saw them "
                    f"(out-of-fold, on the frozen features), on {split_name}. "
                    f"`zoolens data issues {data}{f' --split {split}' if split else ''} --out DIR` writes every flag, "
                    f"and DIR/suggested_corrections.csv, the training part fixed without a person ({relabels} "
                    f"photo(s) relabelled where the heads are sure, {len(fixes) - relabels} left out where not: "
                    f"train with --corrections on it); `zoolens web --review {data}` goes through them one by one."}


def per_class_rows(summary: dict) -> list[dict]:
    rows, names = [], summary.get("names") or {}
    for label, values in summary.get("per_class", {}).items():
        rows.append({"name": names.get(label, label), "precision": _percent(values["precision"]), "recall": _percent(values["recall"]),
                     "f1": _percent(values["f1-score"]), "support": int(values["support"])})
    return rows


def overall_rows(summary: dict) -> list[tuple[str, str, str, str]]:
    """(average, precision, recall, F1) for the macro and weighted averages."""
    return [
        (kind, _percent(summary.get(f"precision_{kind}")), _percent(summary.get(f"recall_{kind}")),
         _percent(summary.get(f"f1_{kind}")))
        for kind in ("macro", "weighted")
        if f"f1_{kind}" in summary
    ]


def headline(summary: dict) -> list[tuple[str, str]]:
    return [
        ("accuracy", _percent(summary.get("accuracy"))),
        ("macro F1", _percent(summary.get("f1_macro"))),
        ("log loss", f"{summary['loss']:.3f}" if summary.get("loss") is not None else "–"),
        ("photos evaluated", str(summary.get("images", "–"))),
        *([("answered with a class", _percent(summary["answers"].get("answered")))] if summary.get("answers") else []),
    ]


def confused_pairs(matrix: np.ndarray, classes: list[str], limit: int = 10) -> list[dict]:
    """Off-diagonal cells of the confusion matrix, largest first."""
    totals = matrix.sum(1)
    pairs = [
        (int(matrix[i, j]), i, j)
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and matrix[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [
        {"true": classes[i], "predicted": classes[j], "count": n, "share": f"{n / max(totals[i], 1):.1%}"}
        for n, i, j in pairs[:limit]
    ]


def confusion_section(matrix: np.ndarray, classes: list[str]) -> dict:
    from zoolens.evaluation.plots import plot_confusion_matrix

    return {
        "counts": _plotted(plot_confusion_matrix, matrix, classes),
        "normalized": _plotted(plot_confusion_matrix, matrix, classes, normalize=True),
    }


# ---- the photos it does not know ------------------------------------------------------------------------
def open_set_checks(recorded: dict) -> list[dict]:
    """How the open-set check decides, in plain words, with the model's own thresholds (mode "on")."""
    on = recorded.get("thresholds", {}).get("on", {})
    checks = []
    if recorded.get("animal_check") == "on":
        checks.append({"name": "Is there an animal?", "text": (
            "The backbone's own ImageNet classifier (1000 everyday categories, 398 of them animals) adds up the "
            f"probability that the photo shows any animal. Below {_chance(on.get('animal', 0))} the answer is "
            "“none of these: no animal in the photo”, or “a person” when a face is found in it or the network "
            "sees the clothes people wear.")})
    else:
        checks.append({"name": "Is there an animal?", "text": (
            f"Not asked for this model ({recorded.get('animal_check', 'off')}).")})
    like = (f"The photo's features are compared with those of {recorded.get('bank', 'the training photos')} kept "
            f"from training. When even the {_ordinal(recorded.get('neighbours', 10))} most similar of them is "
            f"further than a cosine distance of {on.get('distance', 0):.3f}")
    kinds = recorded.get("known_imagenet_categories") or []
    if on.get("known") is not None and kinds:
        like += (f", or when the ImageNet classifier puts less than {_chance(on['known'])} of its probability on the "
                 f"{len(kinds)} categories the training photos are seen as ({_examples(kinds)})")
    checks.append({"name": "Like the training photos?", "text": like + (
        ", the answer is “none of these: an animal unlike any training photo” (another species, a drawing, an "
        "empty frame).")})
    checks.append({"name": "Sure enough?", "text": (
        f"When the calibrated probability of its best class is below {on.get('confidence', 0.5):.0%}, the photo "
        "looks like one of its kinds but it cannot tell which: the answer is “not sure”, with the best guess.")})
    return checks


def _examples(names: list[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _chance(probability: float) -> str:
    """A probability for people: '38 %', and the tiny ones still readable ('0.001 %')."""
    return f"{probability * 100:.2g} %"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def threshold_rows(recorded: dict) -> list[dict]:
    figures = recorded.get("turned_away_on_calibration", {})
    rows = []
    for mode, limits in recorded.get("thresholds", {}).items():
        turned = figures.get(mode, {})
        rows.append({
            "mode": mode + (" (default)" if mode == "on" else ""),
            "distance": f"{limits['distance']:.3f}",
            "animal": f"{limits['animal']:.3g}" if limits.get("animal") is not None else "off",
            "known": f"{limits['known']:.3g}" if limits.get("known") is not None else "off",
            "confidence": _percent(limits.get("confidence")),
            "none": _percent(turned.get("none_of_these")),
            "not_sure": _percent(turned.get("not_sure")),
        })
    return rows


def answers_cards(answers: dict) -> list[tuple[str, str]]:
    return [
        ("answered with a class", _percent(answers.get("answered"))),
        ("none of these", _percent(answers.get("none_of_these"))),
        ("not sure", _percent(answers.get("not_sure"))),
        ("accuracy on those answered", _percent(answers.get("accuracy_on_answered"))),
    ]


def _reasons_text(reasons: dict) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in reasons.items()) or "–"


def unknown_rows(results: dict) -> list[dict]:
    rows = []
    for photos in results.get("unknown", []) + ([{**results["unknown_all"], "folder": "all unknown photos"}]
                                                 if len(results.get("unknown", [])) > 1 else []):
        rows.append({"folder": photos["folder"], "photos": photos["photos"], "accepted": _percent(photos["accepted"]),
                     "as": ", ".join(f"{name} {n}" for name, n in photos.get("accepted_as", {}).items()) or "–",
                     "auroc": f"{photos['auroc']:.3f}" if photos.get("auroc") is not None else "–",
                     "reasons": _reasons_text(photos.get("reasons", {})),
                     "total": photos["folder"] == "all unknown photos"})
    return rows


def measured_unknown(model, results_file: Path | None, data: Path | None = None) -> dict | None:
    """What `zoolens evaluate --unknown` measured (its open_set.json and grids), when it is there.

    open_set.json may come with a model folder someone sent: its grids are read only from beside it, and the
    photos it lists only from inside `data`, the folder the report is made on (the others: its grid figure)."""
    if results_file is None or not os.path.lexists(results_file):
        return None
    try:
        return _unknown_section(model, results_file, read_json(results_file), data)
    except ZoolensError as error:
        return {"problem": str(error)}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return {"problem": f"{results_file}: not what zoolens evaluate --unknown writes ({str(error)[:100]})"}


def _unknown_section(model, results_file: Path, results: dict, data: Path | None) -> dict:
    known = results["known"]
    listed_grids = dict(results.get("grids", {}))
    accepted = sorted((photo for folder in results.get("unknown", []) for photo in folder.get("accepted_photos", [])),
                      key=lambda photo: -photo.get("confidence", 0.0))
    every = results.get("unknown_all", {})
    grids = {name: results_file.parent / file for name, file in listed_grids.items() if _plain_file_name(file)}
    galleries = [
        open_set_gallery(f"Its own test photos it turned away ({known.get('turned_away_count', '?')} of "
                         f"{known.get('photos', '?')})", known.get("turned_away_photos", []),
                         grids.get("open_set_known_turned_away"), readable_in=data),
        open_set_gallery(f"Unknown photos it accepted as a class ({every.get('accepted_count', '?')} of "
                         f"{every.get('photos', '?')})", accepted, grids.get("open_set_unknown_accepted")),
    ]
    current = model.meta.get("open_set", {}).get("thresholds", {}).get(results.get("mode"))
    return {
        "problem": None,
        "file": str(results_file),
        "mode": results.get("mode", "on"),
        "written": results.get("written", "unknown"),
        "stale": current is not None and results.get("thresholds") not in (None, current),
        "known": {"photos": known.get("photos"), "answered": _percent(known.get("answered")),
                  "accuracy_on_answered": _percent(known.get("accuracy_on_answered")),
                  "accuracy_all": _percent(known.get("accuracy_all"))},
        "rows": unknown_rows(results),
        "auroc": f"{results['auroc']:.3f}" if results.get("auroc") is not None else "–",
        "accepted": _percent(every.get("accepted")),
        "galleries": galleries,
    }


def _plain_file_name(name) -> bool:
    return isinstance(name, str) and bool(name) and Path(name).name == name and not name.startswith(".")


def open_set_gallery(title: str, photos: list[dict], grid: Path | None, readable_in: Path | None = None) -> dict:
    """Thumbnails of the photos open_set.json lists that lie inside `readable_in`, with their answers; its grid
    figure otherwise (or when they are gone)."""
    from zoolens.errors import ImageError

    shots = []
    for photo in photos[:OPEN_SET_SHOWN] if readable_in is not None else []:
        try:
            if not lies_inside(photo["path"], readable_in):
                continue
            image = open_image(Path(photo["path"]))
        except (ImageError, OSError, KeyError, TypeError):
            continue
        shots.append({"photo": data_uri(image, max_side=THUMBNAIL_SIZE), "answer": photo.get("answer", ""),
                      "true": photo.get("true"), "file": photo["path"]})
    figure = _grid_figure(grid) if not shots and photos else None
    return {"title": title, "shots": shots, "grid": figure,
            "empty": "None." if not photos else "The photos are no longer where they were measured."}


def _grid_figure(grid: Path | None) -> str | None:
    from zoolens.errors import ImageError

    if grid is None or not grid.is_file():
        return None
    try:
        return photo_figure_uri(grid)
    except ImageError as error:
        log.warning("%s: the grid figure is left out of the report (%s)", grid, error.reason)
        return None


def open_set_section(model, metrics: dict, results_file: Path | None, data: Path | None = None) -> dict:
    recorded = model.meta.get("open_set") or {}
    fitted = model.open_set is not None
    answers = metrics.get("answers")
    return {
        "fitted": fitted,
        "checks": open_set_checks(recorded) if fitted else [],
        "fitted_on": recorded.get("fitted_on", "its validation photos"),
        "share": _percent(recorded.get("share")),
        "strict_share": _percent(recorded.get("strict_share")),
        "thresholds": threshold_rows(recorded) if fitted else [],
        "notes": recorded.get("notes", []),
        "answers": answers_cards(answers) if answers else [],
        "reasons": _reasons_text(answers.get("reasons", {})) if answers else "",
        "answers_mode": answers.get("open_set", "on") if answers else "on",
        "unknown": measured_unknown(model, results_file, data),
    }


# ---- galleries ---------------------------------------------------------------------------------------
def _most_confident_correct(evaluation, limit: int) -> list[int]:
    """The most confident right answers, taking the classes in turn so each one shows."""
    correct = np.flatnonzero(evaluation.y_pred == evaluation.y_true)
    by_class = [
        sorted((i for i in correct if evaluation.y_true[i] == c), key=lambda i: -evaluation.probabilities[i].max())
        for c in range(len(evaluation.classes))
    ]
    chosen: list[int] = []
    for rank in range(max((len(rows) for rows in by_class), default=0)):
        chosen += [int(rows[rank]) for rows in by_class if rank < len(rows)]
    return chosen[:limit]


def short_path(path: str, root: Path | None) -> str:
    """A photo's path as the report shows it: from inside the data folder (`dogs/dogs_00212.jpg`)."""
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return path


def _label_doubt(evaluation, i: int) -> str:
    """Why photo i's label is worth checking, in words."""
    from zoolens.inference.prediction import NONE_OF_THESE

    if evaluation.verdicts and evaluation.verdicts[i] == NONE_OF_THESE:
        return f"label worth checking: it shows none of the classes ({evaluation.reasons[i]})"
    return f"label worth checking: the model is sure it shows {evaluation.shown[int(evaluation.y_pred[i])]}"


def gallery_shots(model, evaluation, indices: list[int], root: Path | None = None,
                  suspects: np.ndarray | None = None) -> list[dict]:
    from zoolens.evaluation.explain import explain

    if not indices:
        return []
    paths = [evaluation.paths[i] for i in indices]
    predicted = [int(evaluation.y_pred[i]) for i in indices]
    shots = []
    for i, explanation in zip(indices, explain(model, paths, "gradcam", targets=predicted, progress=shown())):
        if explanation.error:
            continue
        true, guess = int(evaluation.y_true[i]), int(evaluation.y_pred[i])
        shots.append({
            "photo": data_uri(explanation.image, max_side=THUMBNAIL_SIZE),
            "overlay": data_uri(explanation.overlay("gradcam"), max_side=THUMBNAIL_SIZE),
            "true": evaluation.shown[true],
            "predicted": evaluation.shown[guess],
            "correct": true == guess,
            "confidence": f"{evaluation.probabilities[i, guess]:.1%}",
            "file": short_path(evaluation.paths[i], root),
            "path": evaluation.paths[i],
            "suspect": _label_doubt(evaluation, i) if suspects is not None and suspects[i] else None,
        })
    return shots


def galleries(model, evaluation, size: int, root: Path | None = None,
              suspects: np.ndarray | None = None) -> list[dict]:
    mistakes = {"id": "mistakes", "title": "Worst mistakes",
                "note": "", 
                "empty": "", "shots": []}
    correct = {"id": "correct", "title": "Correct predictions",
               "note": "The most confident right answers, class by class, with Grad-CAM.", "empty": "", "shots": []}
    if evaluation is None:
        mistakes["empty"] = correct["empty"] = "No photos to show: pass --data with a folder of class folders."
        return [mistakes, correct]
    wrong = evaluation.mistakes()
    flagged = int(suspects.sum()) if suspects is not None else 0
    mistakes["note"] = (f"{len(wrong)} of {len(evaluation.y_true)} photos were misclassified; the most confidently "
                        "wrong come first. Grad-CAM (right) shows where the network looked for its answer."
                        + (f" {flagged} are marked “label worth checking”: confident learning (cleanlab) on the "
                           "model's probabilities finds their label less likely than what it answered."
                           if flagged else ""))
    mistakes["shots"] = gallery_shots(model, evaluation, wrong[:size], root, suspects)
    mistakes["empty"] = "No mistakes on these photos."
    correct["shots"] = gallery_shots(model, evaluation, _most_confident_correct(evaluation, size), root)
    correct["empty"] = "No correct predictions on these photos."
    return [mistakes, correct]


# ---- the report --------------------------------------------------------------------------------------
def default_data(model) -> Path | None:
    """The folder the model was trained on, when it is still there (and plausibly is: `recorded_data_folder`)."""
    from zoolens.evaluation.evaluate import recorded_data_folder

    return recorded_data_folder(model)


def _open_set_results(model, given: str | Path | None) -> Path | None:
    from zoolens.evaluation.open_set_eval import JSON_FILE

    if given is not None:
        if not Path(given).is_file():
            raise ZoolensError(f"{given}: no such file (the open_set.json of zoolens evaluate --unknown)")
        return Path(given)
    return model.path / "evaluation" / JSON_FILE if model.path else None


def _curves_figure(curves: Path | None) -> str | None:
    if curves is None or not curves.exists():
        return None
    try:
        return figure_uri(curves)
    except ZoolensError as error:  # a model folder someone sent may hold anything under that name
        log.warning("the training curves are left out of the report: %s", error)
        return None


def render(context: dict) -> str:
    import jinja2

    from zoolens.evaluation.report_template import REPORT_TEMPLATE

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(REPORT_TEMPLATE).render(**context)


def write_report(model, data: str | Path | None = None, out: str | Path | None = None,
                 progress: bool = True, gallery_size: int = GALLERY_SIZE,
                 open_set_results: str | Path | None = None) -> Path:
    """Write MODEL's report (default MODEL/report.html). DATA defaults to the folder it was trained on;
    without any data the page shows what was recorded at training time and no photo galleries.
    `open_set_results`: the open_set.json of `zoolens evaluate --unknown` (default MODEL/evaluation/open_set.json).
    `progress`: the bars of its long work (inspecting, features, Grad-CAM) shown, as the CLI does unless --quiet, or
    not: `progress.showing` around the work, which every step below reads."""
    with showing(progress):
        return _write_report(model, data, out, gallery_size, open_set_results)


def _write_report(model, data: str | Path | None, out: str | Path | None, gallery_size: int,
                  open_set_results: str | Path | None) -> Path:
    from zoolens.data.inspect import inspect_folder
    from zoolens.evaluation.evaluate import evaluate
    from zoolens.inference.model import Model

    if isinstance(model, (str, Path)):
        model = Model.load(model)
    if out is None:
        if model.path is None:
            raise ZoolensError("this model was never saved: give write_report an `out` file")
        out = model.path / "report.html"
    data = Path(data) if data is not None else default_data(model)
    if data is not None:
        check_apart(data, out, data_name="the photo folder")
    summary = inspect_folder(data, progress=shown()) if data is not None else None
    evaluation = evaluate(model, data, progress=shown()) if data is not None else None
    metrics = evaluation.summary() if evaluation is not None else model.meta.get("metrics", {})
    if evaluation is not None:
        matrix = evaluation.confusion()
    elif metrics.get("confusion_matrix"):
        matrix = np.array(metrics["confusion_matrix"])
    else:
        raise ZoolensError(f"{model.path}: no evaluation recorded and no data folder: pass {setting('data')}")
    curves = model.path / "training_curves.png" if model.path else None
    class_names = [model.name(c) for c in model.classes]
    suspects = probably_mislabelled(evaluation) if evaluation is not None else None
    open_set = open_set_section(model, metrics, _open_set_results(model, open_set_results), data)
    context = {
        "verdict": verdict(metrics, model.names, evaluation, open_set.get("unknown"),
                           int(suspects.sum()) if suspects is not None else 0),
        "title": model.path.name if model.path else model.network.backbone.info.name,
        "classes": class_names,
        "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "headline": headline(metrics),
        "evaluated_on": metrics.get("evaluated_on", "unknown photos"),
        "card": model_card(model),
        "dataset": dataset_section(model, data, summary),
        "labels": labels_section(model, data),
        "training": training_rows(model.meta),
        "curves": _curves_figure(curves),
        "per_class": per_class_rows(metrics),
        "overall": overall_rows(metrics),
        "confusion": confusion_section(matrix, class_names),
        "confused_pairs": confused_pairs(matrix, class_names),
        "open_set": open_set,
        "galleries": galleries(model, evaluation, gallery_size, data, suspects),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A name with a byte that is not UTF-8 that a section shows as it is becomes an escape, never a crash.
    out.write_text(render(context), encoding="utf-8", errors="backslashreplace")
    return out
