"""Accuracy, loss, precision/recall/F1 (per class, macro, weighted) and the confusion matrix, via scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, log_loss


@dataclass
class Evaluation:
    classes: list[str]
    y_true: np.ndarray  # (N,) class indices
    probabilities: np.ndarray  # (N, C)
    paths: list[str]
    description: str  # which photos these are, in words
    skipped: list[tuple[str, str]] = field(default_factory=list)

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
            self.y_true, self.y_pred, labels=range(len(self.classes)), target_names=self.classes, zero_division=0,
            **options,
        )

    def report_dict(self) -> dict:
        return self._report(output_dict=True)

    def report_text(self) -> str:
        return self._report(digits=4)

    def summary(self) -> dict:
        report = self.report_dict()
        macro, weighted = report["macro avg"], report["weighted avg"]
        return {
            "evaluated_on": self.description,
            "images": int(len(self.y_true)),
            "accuracy": self.accuracy,
            "loss": self.loss,
            "precision_macro": macro["precision"],
            "recall_macro": macro["recall"],
            "f1_macro": macro["f1-score"],
            "precision_weighted": weighted["precision"],
            "recall_weighted": weighted["recall"],
            "f1_weighted": weighted["f1-score"],
            "per_class": {
                name: {k: report[name][k] for k in ("precision", "recall", "f1-score", "support")}
                for name in self.classes
            },
            "confusion_matrix": self.confusion().tolist(),
            "classes": self.classes,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def mistakes(self) -> list[int]:
        """Indices of misclassified photos, most confidently wrong first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return sorted(wrong.tolist(), key=lambda i: -self.probabilities[i].max())
