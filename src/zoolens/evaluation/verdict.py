"""The report's verdict in plain words: how often the model is right, what it is good and bad at, which classes it
confuses, how far to trust a confidence, how it treats photos of none of its classes, and which test photos are
probably labelled wrong (so that a mistake there is the label's, not the model's)."""

from __future__ import annotations

import logging

import numpy as np

from zoolens.inference.prediction import CLASS

log = logging.getLogger("zoolens")

SURE = 0.9  # the confidence the trust sentence splits at


def verdict(metrics: dict, names: dict[str, str], evaluation=None, unknown: dict | None = None,
            suspects: int = 0) -> list[str]:
    """Sentences for the top of the report, from the metrics (recorded, or of `evaluation`); `unknown`: what
    `zoolens evaluate --unknown` measured (the report's section), `suspects`: test photos flagged as mislabelled."""
    sentences = [result(metrics)] if metrics.get("accuracy") is not None else []
    sentences += [s for s in (by_class(metrics, names), most_confused(metrics, names)) if s]
    if evaluation is not None and evaluation.verdicts:
        sentences.append(trust(evaluation))
    sentences.append(unknown_photos(unknown))
    if suspects:
        sentences.append(f"{suspects} of its mistakes may be the label's: the model is sure those photos show "
                         "something else (marked “label worth checking” under Worst mistakes).")
    return sentences


def result(metrics: dict) -> str:
    photos = metrics.get("images", 0)
    wrong = round((1 - metrics["accuracy"]) * photos)
    return f"It is right about {metrics['accuracy']:.1%} of the time: on {photos} photos it never saw, {wrong} wrong."


def by_class(metrics: dict, names: dict[str, str]) -> str | None:
    per_class = metrics.get("per_class") or {}
    if len(per_class) < 2:
        return None
    recalls = {names.get(label, label): values for label, values in per_class.items() if values.get("support")}
    if not recalls:
        return None
    best = max(recalls, key=lambda name: recalls[name]["recall"])
    worst = min(recalls, key=lambda name: recalls[name]["recall"])
    low, high = recalls[worst]["recall"], recalls[best]["recall"]
    if high - low < 0.02:
        return f"It recognises every class about equally well ({low:.0%} to {high:.0%} of each class found)."
    photos = int(recalls[worst]["support"])
    missed = round((1 - low) * photos)
    return (f"Best at {best} ({high:.1%} of them found); weakest at {worst} ({low:.1%}: {missed} of {photos} "
            "missed).")


def most_confused(metrics: dict, names: dict[str, str]) -> str | None:
    matrix, classes = metrics.get("confusion_matrix"), metrics.get("classes")
    if not matrix or not classes:
        return None
    matrix = np.asarray(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    if not off.any():
        return "It never took one of its classes for another on these photos."
    true, taken = np.unravel_index(int(off.argmax()), off.shape)
    count, total = int(off[true, taken]), int(matrix[true].sum())
    return (f"Its most common mistake: taking {names.get(classes[true], classes[true])} for "
            f"{names.get(classes[taken], classes[taken])} ({count} of {total} photos).")


def trust(evaluation) -> str:
    """How often an answer is right when the model says it is sure, and when it says less."""
    answered = np.array([v == CLASS for v in evaluation.verdicts])
    confidence = evaluation.probabilities.max(1)
    right = evaluation.y_pred == evaluation.y_true
    sure, unsure = answered & (confidence >= SURE), answered & (confidence < SURE)
    parts = []
    if sure.any():
        parts.append(f"when it answers with {SURE:.0%} confidence or more ({sure.sum()} of {len(right)} photos), it "
                     f"is right {right[sure].mean():.1%} of the time")
    if unsure.any():
        parts.append(f"below {SURE:.0%} ({unsure.sum()} photos), {right[unsure].mean():.0%}")
    turned_away = int((~answered).sum())
    text = "; ".join(parts) if parts else "it answered none of these photos with a class"
    text = text[:1].upper() + text[1:] + "."
    if turned_away:
        text += (f" It turned {turned_away} away as “not sure” or “none of these”, rather than guess "
                 f"(of those, it would have been right {right[~answered].mean():.0%} of the time).")
    return text


def unknown_photos(unknown: dict | None) -> str:
    if not unknown or unknown.get("problem"):
        return ("How it treats photos of none of its classes (people, objects, other animals) is not measured yet: "
                "run zoolens evaluate MODEL DATA --unknown FOLDER.")
    return (f"Shown photos of none of its classes, it still named one of its classes for {unknown['accepted']} of "
            f"them (and answered {unknown['known']['answered']} of its own test photos).")


def probably_mislabelled(evaluation) -> np.ndarray:
    """(N,) True for test photos whose label is probably wrong, by confident learning (cleanlab) on the model's
    probabilities for them, which it computed without ever training on them."""
    flagged = np.zeros(len(evaluation.y_true), dtype=bool)
    classes_seen = np.bincount(evaluation.y_true, minlength=len(evaluation.classes))
    if len(evaluation.y_true) < 2 * len(evaluation.classes) or (classes_seen == 0).any():
        return flagged  # cleanlab needs every class among the labels
    from cleanlab.filter import find_label_issues

    from zoolens.evaluation.data_issues import CLEANLAB_PROCESSES

    try:
        flagged = find_label_issues(evaluation.y_true, evaluation.probabilities, filter_by="confident_learning",
                                    n_jobs=CLEANLAB_PROCESSES)
    except ValueError as error:  # too few photos of a class for its estimates
        log.warning("no label check in the report: %s", error)
        return flagged
    return np.asarray(flagged, dtype=bool) & (evaluation.y_pred != evaluation.y_true)
