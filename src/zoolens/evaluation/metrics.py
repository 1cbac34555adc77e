"""Accuracy, loss, precision/recall/F1 (per class, macro, weighted) and the confusion matrix; and how many photos
the model answered at all ("none of these" and "not sure" turn some away).

The metrics are scikit-learn's `confusion_matrix`, `log_loss` and `classification_report` (with `labels`,
`zero_division=0`), written out in NumPy rather than imported: importing `sklearn.metrics` takes 1.3 s on a quiet
2-core machine (3.9 s on a busy one, `python -X importtime`), more than a third of a warm `zoolens train`'s 3 s
target, for a few bincounts. tests/test_metrics.py holds them equal to scikit-learn's, figures and text."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoolens.inference.prediction import CLASS, NONE_OF_THESE, NOT_SURE


@dataclass
class Evaluation:
    classes: list[str]
    y_true: np.ndarray  # (N,) class indices
    probabilities: np.ndarray  # (N, C)
    paths: list[str]
    description: str  # which photos these are, in words
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # The answers a user gets for these photos (CLASS, NOT_SURE, NONE_OF_THESE; aligned with `paths`) and
    # why those turned away were; empty when not computed. Accuracy above is over all photos regardless.
    verdicts: list[str] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    open_set_mode: str = "on"
    names: dict[str, str] = field(default_factory=dict)  # class -> the name people read, where it differs

    @property
    def shown(self) -> list[str]:
        """The classes as people read them, in order (Imagewoof's `n02099601` is "golden retriever")."""
        return [self.names.get(c, c) for c in self.classes]

    @property
    def y_pred(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.y_pred == self.y_true).mean()) if len(self.y_true) else float("nan")

    @property
    def loss(self) -> float:
        return log_loss(self.y_true, self.probabilities)

    # The figures under the names metrics.json and a loaded model's `inference.record.EvaluationRecord` give them.
    @property
    def images(self) -> int:
        return len(self.y_true)

    @property
    def evaluated_on(self) -> str:
        return self.description

    @property
    def precision_macro(self) -> float:
        return self.report_dict()["macro avg"]["precision"]

    @property
    def recall_macro(self) -> float:
        return self.report_dict()["macro avg"]["recall"]

    @property
    def f1_macro(self) -> float:
        return self.report_dict()["macro avg"]["f1-score"]

    @property
    def precision_weighted(self) -> float:
        return self.report_dict()["weighted avg"]["precision"]

    @property
    def recall_weighted(self) -> float:
        return self.report_dict()["weighted avg"]["recall"]

    @property
    def f1_weighted(self) -> float:
        return self.report_dict()["weighted avg"]["f1-score"]

    @property
    def per_class(self) -> dict[str, dict[str, float]]:
        report = self.report_dict()
        return {label: {k: report[name][k] for k in ("precision", "recall", "f1-score", "support")}
                for label, name in zip(self.classes, self.shown)}

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.y_true, self.y_pred, len(self.classes))

    def report_dict(self) -> dict:
        return classification_report(self.confusion(), self.shown)

    def report_text(self) -> str:
        return report_text(self.report_dict(), self.shown)

    # ---- the answers a user gets ----
    @property
    def answered(self) -> np.ndarray:
        """(N,) True where the answer is a class."""
        return np.array([verdict == CLASS for verdict in self.verdicts], dtype=bool)

    def share_of(self, verdict: str) -> float:
        return float(np.mean([v == verdict for v in self.verdicts])) if self.verdicts else float("nan")

    @property
    def accuracy_on_answered(self) -> float:
        answered = self.answered
        if not answered.any():
            return float("nan")
        return float((self.y_pred[answered] == self.y_true[answered]).mean())

    def reason_counts(self) -> dict[str, int]:
        """How many photos were turned away for each reason ("a person", ..., "not sure"), most first."""
        return turned_away_reasons(self.verdicts, self.reasons)

    def answers_summary(self) -> dict:
        return {
            "open_set": self.open_set_mode,
            "photos": len(self.verdicts),
            "answered": self.share_of(CLASS),
            "none_of_these": self.share_of(NONE_OF_THESE),
            "not_sure": self.share_of(NOT_SURE),
            "accuracy_on_answered": self.accuracy_on_answered,
            "reasons": self.reason_counts(),
        }

    def summary(self) -> dict:
        report = self.report_dict()
        macro, weighted = report["macro avg"], report["weighted avg"]
        return {
            "evaluated_on": self.description,
            "images": len(self.y_true),
            "accuracy": self.accuracy,
            "loss": self.loss,
            "precision_macro": macro["precision"],
            "recall_macro": macro["recall"],
            "f1_macro": macro["f1-score"],
            "precision_weighted": weighted["precision"],
            "recall_weighted": weighted["recall"],
            "f1_weighted": weighted["f1-score"],
            "per_class": {
                label: {k: report[name][k] for k in ("precision", "recall", "f1-score", "support")}
                for label, name in zip(self.classes, self.shown)
            },
            "confusion_matrix": self.confusion().tolist(),
            "classes": self.classes,
            "names": dict(zip(self.classes, self.shown)),
            **({"answers": self.answers_summary()} if self.verdicts else {}),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def mistakes(self) -> list[int]:
        """Indices of misclassified photos, most confidently wrong first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return sorted(wrong.tolist(), key=lambda i: -self.probabilities[i].max())


def turned_away_reasons(verdicts: list[str], reasons: list[str | None]) -> dict[str, int]:
    """Counts of why photos were not answered with a class: each "none of these" reason, and "not sure"."""
    from collections import Counter

    counts = Counter(reason or NONE_OF_THESE if verdict == NONE_OF_THESE else verdict
                     for verdict, reason in zip(verdicts, reasons) if verdict in (NONE_OF_THESE, NOT_SURE))
    return dict(counts.most_common())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) photo counts, true class by row, predicted by column."""
    pairs = np.asarray(y_true, dtype=np.int64) * classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean of -log p(true class), each p clipped to [eps, 1 - eps] of its own float type."""
    eps = np.finfo(probabilities.dtype).eps
    chosen = np.clip(probabilities, eps, 1 - eps)[np.arange(len(y_true)), y_true]
    return float(np.mean(-np.log(chosen)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_report(matrix: np.ndarray, names: list[str]) -> dict:
    """Per class, macro and weighted precision, recall, F1 and support, and the accuracy, from a confusion matrix:
    a metric whose denominator is 0 is 0."""
    true_positives = np.diag(matrix).astype(float)
    support = matrix.sum(1).astype(float)
    precision = _ratio(true_positives, matrix.sum(0).astype(float))
    recall = _ratio(true_positives, support)
    f1 = _ratio(2 * true_positives, matrix.sum(0) + support)
    rows = {"precision": precision, "recall": recall, "f1-score": f1}
    report: dict = {name: {**{k: float(v[i]) for k, v in rows.items()}, "support": float(support[i])}
                    for i, name in enumerate(names)}
    total = float(support.sum())
    report["accuracy"] = float(true_positives.sum() / total) if total else 0.0
    report["macro avg"] = {**{k: float(np.mean(v)) for k, v in rows.items()}, "support": total}
    weighted = {k: float(np.average(v, weights=support)) if total else 0.0 for k, v in rows.items()}
    report["weighted avg"] = {**weighted, "support": total}
    return report


def report_text(report: dict, names: list[str], digits: int = 4) -> str:
    """`classification_report`'s table, laid out as scikit-learn prints it."""
    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    columns = ("precision", "recall", "f1-score", "support")
    text = f"{'':>{width}s} " + "".join(f" {c:>9}" for c in columns) + "\n\n"

    def line(heading: str, values: dict) -> str:
        return (f"{heading:>{width}s} " + "".join(f" {values[c]:>9.{digits}f}" for c in columns[:3])
                + f" {int(values['support']):>9}\n")

    text += "".join(line(name, report[name]) for name in names) + "\n"
    total = int(report["macro avg"]["support"])
    text += f"{'accuracy':>{width}s} " + f" {'':>9}" * 2 + f" {report['accuracy']:>9.{digits}f} {total:>9}\n"
    return text + line("macro avg", report["macro avg"]) + line("weighted avg", report["weighted avg"])
