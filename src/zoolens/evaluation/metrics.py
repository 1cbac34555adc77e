"""Accuracy, loss, precision/recall/F1 (per class, macro, weighted) and the confusion matrix, via scikit-learn;
and how many photos the model answered at all ("none of these" and "not sure" turn some away)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, log_loss

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
        return float(log_loss(self.y_true, self.probabilities, labels=range(len(self.classes))))

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.y_true, self.y_pred, labels=range(len(self.classes)))

    def _report(self, **options):
        return classification_report(
            self.y_true, self.y_pred, labels=range(len(self.classes)), target_names=self.shown, zero_division=0,
            **options,
        )

    def report_dict(self) -> dict:
        return self._report(output_dict=True)

    def report_text(self) -> str:
        return self._report(digits=4)

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
