"""Evaluate a model on photos it never trained on, and write the figures and tables that go with it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from zoolens.data.folders import Sample, class_folder_names, scan_folder
from zoolens.data.split import read_manifest, split_folder
from zoolens.errors import ZoolensError
from zoolens.evaluation.metrics import Evaluation
from zoolens.files import output_folder
from zoolens.inference.prediction import CLASS, NONE_OF_THESE, NOT_SURE, Prediction, open_input
from zoolens.models.faces import PERSON_MIN_SIDE
from zoolens.plotting import FigureDrawer
from zoolens.progress import shown

log = logging.getLogger(__name__)

MISTAKES_SHOWN = 20


def _same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def recorded_data_folder(model) -> Path | None:
    """The folder the model says it was trained on, when it is still there and still holds this model's class
    folders. zoolens.json may come from someone else: a recorded "/" or home folder, or one whose class folders
    are not the model's classes, is never read (pass --data to name the folder yourself)."""
    root = model.meta.get("data", {}).get("root")
    if not isinstance(root, str) or not os.path.isabs(root) or not os.path.isdir(root):
        return None
    real = Path(os.path.realpath(root))
    anchors = [Path.home()] + ([model.path] if model.path else [])
    if any(Path(os.path.realpath(anchor)).is_relative_to(real) for anchor in anchors):
        log.warning("%s: the data folder its zoolens.json names (%s) holds the home or the model folder; "
                    "not read (pass --data)", model.path, root)
        return None
    if set(class_folder_names(real)) != set(model.classes):
        log.warning("%s: the data folder its zoolens.json names (%s) no longer holds exactly its classes' folders; "
                    "not read (pass --data)", model.path, root)
        return None
    return Path(root)


def choose_photos(model, data: str | Path) -> tuple[list[Sample], str, list[tuple[str, str]]]:
    """Which photos of DATA are fair to evaluate on: the test part of the model's own split when DATA
    is the folder it was trained on; the held-out part of an already split folder; otherwise all."""
    trained_on = model.meta.get("data", {}).get("root")
    split_file = model.path / "split.csv" if model.path else None
    folder = scan_folder(data)
    if trained_on and _same_folder(trained_on, folder.root) and split_file and split_file.exists():
        manifest = read_manifest(split_file, folder.root)
        return manifest.part("test"), f"the test part of the model's own split of {folder.root}", folder.skipped
    if folder.presplit:
        manifest = split_folder(folder)
        held_out = "test" if "test" in folder.parts.values() else "val"
        return manifest.part("test"), f"the {held_out}/ part of {folder.root}", folder.skipped
    return folder.samples, f"all photos in {folder.root}", folder.skipped


def evaluate_samples(model, samples: list[Sample], description: str, skipped=(), progress: bool | None = None,
                     open_set: str = "on", on_scored=None) -> Evaluation:
    """Accuracy and the rest over every usable photo, and the answer a user gets for each (a class, "not sure"
    or "none of these" under `open_set`), from one pass of feature extraction. `on_scored(evaluation)` is called
    once the class probabilities are known and before the answers are (telling a person in a turned-away photo takes
    a face detector): what needs only the former (the figures) can start. `progress`: its bar shown or not; None: as
    the caller's `progress.showing` says (a training run's progress view)."""
    if progress is None:
        progress = shown()
    known = set(model.classes)
    unknown = sorted({s.label for s in samples} - known)
    usable_samples = [s for s in samples if s.label in known]
    if not usable_samples:
        raise ZoolensError(
            f"none of the classes in the data ({', '.join(unknown[:8])}) are classes of the model "
            f"({', '.join(model.classes[:8])})"
        )
    found = model.features_of_paths([s.path for s in usable_samples], progress=progress)
    kept = [s for s, ok in zip(usable_samples, found.usable) if ok]
    features = found.features[found.usable]
    index = {name: i for i, name in enumerate(model.classes)}
    skipped = list(skipped) + list(found.problems)
    skipped += [(str(s.path), f"class {s.label!r} is not one of the model's classes") for s in samples if s.label in unknown]
    evaluation = Evaluation(
        classes=model.classes,
        y_true=np.array([index[s.label] for s in kept], dtype=int),
        probabilities=model.class_probabilities(features),
        paths=[str(s.path) for s in kept],
        description=description,
        skipped=skipped,
        open_set_mode=open_set,
        names=dict(model.names),
    )
    if on_scored is not None:
        on_scored(evaluation)
    answers = answers_for(model, [s.path for s in kept], features, open_set)
    evaluation.verdicts = [a.verdict for a in answers]
    evaluation.reasons = [a.reason for a in answers]
    return evaluation


def answers_for(model, paths: list[Path], features: np.ndarray, open_set: str = "on") -> list[Prediction]:
    """What `zoolens predict` would answer for these photos, from features already computed."""
    return model.predict_features([str(p) for p in paths], features, top_k=1, open_set=open_set,
                                  image_of=lambda i: open_input(paths[i], PERSON_MIN_SIDE))


def evaluate(model, data: str | Path, progress: bool = True, open_set: str = "on") -> Evaluation:
    samples, description, skipped = choose_photos(model, data)
    return evaluate_samples(model, samples, description, skipped, progress, open_set)


def draw_evaluation_figures(evaluation: Evaluation, out: Path, figures: FigureDrawer) -> dict:
    """The confusion matrices and the grid of the worst mistakes, asked of `figures`: {name: its drawing}."""
    out = output_folder(out)
    matrix = evaluation.confusion()
    plots = "zoolens.evaluation.plots"
    items = [
        (
            evaluation.paths[i],
            f"true: {evaluation.shown[evaluation.y_true[i]]}\n"
            f"predicted: {evaluation.shown[evaluation.y_pred[i]]} ({evaluation.probabilities[i].max():.0%})",
        )
        for i in evaluation.mistakes()[:MISTAKES_SHOWN]
    ]
    return {
        "confusion_matrix": figures.draw(f"{plots}:plot_confusion_matrix", matrix, evaluation.shown,
                                         out / "confusion_matrix.png"),
        "confusion_matrix_normalized": figures.draw(f"{plots}:plot_confusion_matrix", matrix, evaluation.shown,
                                                    out / "confusion_matrix_normalized.png", True),
        "misclassified": figures.draw(f"{plots}:plot_image_grid", items, out / "misclassified.png",
                                      f"Most confident mistakes ({len(evaluation.mistakes())} in all)"),
    }


def write_evaluation(evaluation: Evaluation, out: Path, figures: FigureDrawer | None = None,
                     drawn: dict | None = None) -> dict[str, Path]:
    """metrics.json, classification_report.txt, confusion matrices and a grid of the worst mistakes; the figures
    those `drawn` already (`draw_evaluation_figures`), else drawn by `figures` (by default here, now)."""
    out = output_folder(out)
    drawn = drawn or draw_evaluation_figures(evaluation, out, figures or FigureDrawer(separate=False))
    written = {"metrics": out / "metrics.json", "report": out / "classification_report.txt"}
    written["metrics"].write_text(json.dumps(evaluation.summary(), indent=2), encoding="utf-8")
    written["report"].write_text(evaluation.report_text(), encoding="utf-8")
    for name, figure in drawn.items():
        if figure.result():  # no grid without mistakes
            written[name] = figure.result()
    return written


def format_evaluation(evaluation: Evaluation) -> str:
    lines = [
        f"Evaluated on {len(evaluation.y_true)} photos: {evaluation.description}",
        f"accuracy {evaluation.accuracy:.4f}   loss {evaluation.loss:.4f}",
        *([answers_line(evaluation)] if evaluation.verdicts else []),
        "",
        evaluation.report_text().rstrip(),
    ]
    if evaluation.skipped:
        lines += ["", f"{len(evaluation.skipped)} file(s) skipped:"] + [f"  {p}: {r}" for p, r in evaluation.skipped[:20]]
        if len(evaluation.skipped) > 20:
            lines.append(f"  ... and {len(evaluation.skipped) - 20} more (see metrics.json)")
    return "\n".join(lines)


def result_sentence(evaluation: Evaluation) -> str:
    """The result as a person says it: "98.7 % right on 600 photos it never saw (8 wrong)"."""
    photos = len(evaluation.y_true)
    wrong = int((evaluation.y_pred != evaluation.y_true).sum())
    return f"{evaluation.accuracy:.1%} right on {photos} photos it never saw ({wrong} wrong)"


def answers_line(evaluation: Evaluation) -> str:
    """One line on the photos the model did not answer with a class (accuracy above counts them all)."""
    return (f"answered {evaluation.share_of(CLASS):.1%} with a class, turned away {1 - evaluation.share_of(CLASS):.1%} "
            f"(none of these {evaluation.share_of(NONE_OF_THESE):.1%}, not sure {evaluation.share_of(NOT_SURE):.1%}; "
            f"open set {evaluation.open_set_mode}); accuracy on those answered {evaluation.accuracy_on_answered:.4f}")
