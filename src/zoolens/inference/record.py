"""What a model folder records beside its weights, read back as records: its evaluation on the test part it held out
(`evaluation/metrics.json`) and its training history (`history.csv`).

A loaded model's evaluation is an `EvaluationRecord`: the figures `evaluation.metrics.Evaluation` computes for a
fresh model, under the same names (`.accuracy`, `.f1_macro`, `.per_class`, ...), without the per-photo arrays it was
computed from. Both files are data from outside: one missing or damaged gives None and one log line, never an
exception, since the model still answers without them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from collections.abc import Mapping

from zoolens.files import read_limited

log = logging.getLogger(__name__)
METRICS_FILE = Path("evaluation") / "metrics.json"
HISTORY_FILE = "history.csv"
MAX_RECORD_BYTES = 10 * 1024 * 1024
SUMMARY_FIGURES = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "precision_weighted",
                   "recall_weighted", "f1_weighted")


@dataclass(frozen=True)
class EvaluationRecord:
    """A model's results on photos it never trained on, as its folder records them."""

    accuracy: float
    loss: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    images: int
    evaluated_on: str
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # class -> precision, recall, ...

    @classmethod
    def from_summary(cls, summary: Mapping) -> EvaluationRecord:
        """From `Evaluation.summary()` (metrics.json); ValueError naming the first field that is missing or wrong."""
        figures = {}
        for name in SUMMARY_FIGURES:
            value = summary.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, not {value!r}")
            figures[name] = float(value)
        images, evaluated_on = summary.get("images"), summary.get("evaluated_on", "")
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError(f"images: must be a whole number, not {images!r}")
        per_class = summary.get("per_class", {})
        if not isinstance(per_class, dict) or not all(isinstance(row, dict) for row in per_class.values()):
            raise ValueError("per_class: must map each class to its figures")
        frozen = MappingProxyType({str(label): MappingProxyType(dict(row)) for label, row in per_class.items()})
        return cls(**figures, images=images, evaluated_on=str(evaluated_on), per_class=frozen)


def read_evaluation(folder: Path) -> EvaluationRecord | None:
    """The evaluation a model folder records, or None (logged when the file is there but unusable)."""
    path = Path(folder) / METRICS_FILE
    if not path.exists():
        log.info("%s: no evaluation recorded (the model was trained without a test part, or not by zoolens)", path)
        return None
    try:
        summary = json.loads(read_limited(path, MAX_RECORD_BYTES).decode("utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        return EvaluationRecord.from_summary(summary)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as error:
        reason = getattr(error, "strerror", None) or " ".join(str(error).split())[:160]
        log.warning("%s: unreadable evaluation (%s); the model has none", path, reason)
        return None


def _number(text: str):
    """A history cell as the row had it: an epoch count as int, a loss or accuracy as float, a phase name as is."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def read_history(folder: Path) -> list[dict] | None:
    """The training history a model folder records (one row per epoch, as `train()` returned it), or None."""
    path = Path(folder) / HISTORY_FILE
    if not path.exists():
        log.info("%s: no training history recorded", path)
        return None
    try:
        text = read_limited(path, MAX_RECORD_BYTES).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or any(None in row or None in row.values() for row in rows):
            raise ValueError("not one row per epoch under one header")
        return [{name: _number(value) for name, value in row.items()} for row in rows]
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as error:
        reason = getattr(error, "strerror", None) or " ".join(str(error).split())[:160]
        log.warning("%s: unreadable training history (%s); the model has none", path, reason)
        return None
