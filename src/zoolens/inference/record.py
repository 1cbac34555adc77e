"""What a model folder records, read back as immutable records: its description (`ModelRecord`, zoolens.json), its
evaluation on the test part it held out (`evaluation/metrics.json`) and its training history (`history.csv`).

A loaded model's evaluation is an `EvaluationRecord`: the figures `evaluation.metrics.Evaluation` computes for a
fresh model, under the same names (`.accuracy`, `.f1_macro`, `.per_class`, ...), without the per-photo arrays it was
computed from. Both files are data from outside: one missing or damaged gives None and one log line, never an
exception, since the model still answers without them.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from zoolens.data.class_names import distinct_names, wordnet_name
from zoolens.data.transforms import Preprocessing
from zoolens.files import read_limited
from zoolens.inference.bundle import FORMAT, FORMAT_VERSION
from zoolens.inference.steps import TemperatureScaling

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


@dataclass(frozen=True)
class BackboneDescription:
    """The backbone a model's head reads, as zoolens.json names it. An ensemble ("mobilenet_v2+efficientnet_lite2")
    also lists its `members`, each with the preprocessing it takes (its normalisation; one crop for them all)."""

    name: str
    source: str
    weights_tag: str  # "none": its own weights (fine-tuned, scratch); else the pretrained weights it kept
    feature_dim: int | None
    members: tuple[BackboneDescription, ...] = ()
    preprocessing: Preprocessing | None = None  # a member's

    @classmethod
    def of(cls, extractor) -> BackboneDescription:
        """The description of a `runtime.extractor` extractor: one backbone, or an ensemble and its members."""
        info = extractor.info
        members = extractor.members
        return cls(info.name, info.source, info.weights_tag, extractor.feature_dim,
                   tuple(cls(m.info.name, m.info.source, m.info.weights_tag, m.feature_dim, (), m.preprocessing)
                         for m in members) if len(members) > 1 else ())

    def to_json(self) -> dict:
        described = {"name": self.name, "source": self.source, "weights_tag": self.weights_tag}
        if self.feature_dim is not None:
            described["feature_dim"] = self.feature_dim
        if self.preprocessing is not None:
            described["preprocessing"] = self.preprocessing.to_dict()
        if self.members:
            described["members"] = [member.to_json() for member in self.members]
        return described

    @classmethod
    def from_json(cls, described: dict) -> BackboneDescription:
        """From zoolens.json's "backbone" (validated by `bundle.read_meta`)."""
        prep = described.get("preprocessing")
        return cls(described["name"], described.get("source", ""), described.get("weights_tag", "none"),
                   described.get("feature_dim"), tuple(cls.from_json(m) for m in described.get("members", ())),
                   Preprocessing.from_dict(prep) if prep is not None else None)


@dataclass(frozen=True)
class ModelRecord:
    """What zoolens.json holds: the model's steps described (its classes, the backbone its features come from and how
    photos are prepared for it, the head, the calibration, the open-set check), and how it was made (`made`:
    training, data, metrics, and whatever else a zoolens wrote there, kept as it was). `to_json()` is the file's
    content and `from_json` reads it back; the file's layout is the one every zoolens since format 1 reads."""

    classes: tuple[str, ...]
    class_names: tuple[str, ...]  # what people read for each class, in the order of `classes`
    backbone: BackboneDescription
    preprocessing: Preprocessing
    dropout: float  # the head's, while it trained
    parameters: int
    calibration: TemperatureScaling
    open_set: Mapping = field(default_factory=lambda: MappingProxyType(dict(NO_OPEN_SET)))  # the check's summary
    made: Mapping = field(default_factory=lambda: MappingProxyType({}))
    created: str | None = None
    zoolens_version: str | None = None

    @property
    def names(self) -> dict[str, str]:
        """{class: name people read}, where they differ."""
        return {c: name for c, name in zip(self.classes, self.class_names) if name != c}

    def to_json(self) -> dict:
        return {
            **copy.deepcopy(dict(self.made)),
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "zoolens_version": self.zoolens_version,
            "created": self.created,
            "classes": list(self.classes),
            "class_names": list(self.class_names),
            "backbone": self.backbone.to_json(),
            "preprocessing": self.preprocessing.to_dict(),
            "head": {"dropout": self.dropout},
            "parameters": self.parameters,
            "calibration": self.calibration.to_json(),
            "open_set": copy.deepcopy(dict(self.open_set)),
        }

    @classmethod
    def from_json(cls, meta: dict) -> ModelRecord:
        """From a zoolens.json already validated (`bundle.read_meta`)."""
        classes = tuple(meta["classes"])
        calibration = meta.get("calibration", {})
        return cls(
            classes=classes,
            class_names=tuple(recorded_names(list(classes), meta).get(c, c) for c in classes),
            backbone=BackboneDescription.from_json(meta["backbone"]),
            preprocessing=Preprocessing.from_dict(meta["preprocessing"]),
            dropout=float(meta.get("head", {}).get("dropout", 0.2)),
            parameters=int(meta.get("parameters", 0)),
            calibration=TemperatureScaling(float(calibration.get("temperature", 1.0)), calibration.get("fitted_on")),
            open_set=MappingProxyType(copy.deepcopy(meta.get("open_set", NO_OPEN_SET))),
            made=MappingProxyType(copy.deepcopy({k: v for k, v in meta.items() if k not in PIPELINE_KEYS})),
            created=meta.get("created"),
            zoolens_version=meta.get("zoolens_version"),
        )


NO_OPEN_SET = {"animal_check": "off", "method": "none (not fitted)"}
# What ModelRecord itself holds of a zoolens.json; every other key is how the model was made (`made`).
PIPELINE_KEYS = ("format", "format_version", "zoolens_version", "created", "classes", "class_names", "backbone",
                 "preprocessing", "head", "parameters", "calibration", "open_set")


def recorded_names(classes: list[str], meta: dict) -> dict[str, str]:
    """{class: name people read}, where they differ: as recorded at training (`class_names`), else, for a model made
    before zoolens recorded them, the WordNet names of ImageNet ids."""
    recorded = meta.get("class_names")
    names = dict(zip(classes, map(str, recorded))) if isinstance(recorded, list) and len(recorded) == len(classes) \
        else {c: wordnet_name(c) or c for c in classes}
    return {c: name for c, name in distinct_names(names).items() if name != c}  # a model folder from elsewhere too
