"""How well a model tells its own kinds from photos of none of them: `zoolens evaluate MODEL DATA --unknown FOLDER`.

Beside accuracy, the figures that matter once people send photos of anything: the share of unknown photos
(people, objects, other species) it still answers with one of its classes, the share of its own test photos
it turns away ("none of these" or "not sure"), its accuracy on the photos it does answer, and the AUROC of
one "unknown-ness" score (known photos 0, unknown 1), which says how well the checks separate the two at any
threshold, not only at the shipped ones.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoolens.choices import DEFAULT_OPEN_SET, OpenSetMode, plain
from zoolens.data.folders import walk_files
from zoolens.data.images import is_image_name
from zoolens.errors import ConfigError
from zoolens.evaluation.evaluate import answers_for
from zoolens.evaluation.metrics import Evaluation, turned_away_reasons
from zoolens.files import output_folder
from zoolens.inference.prediction import CLASS, NONE_OF_THESE, NOT_SURE, Prediction
from zoolens.progress import showing, shown

log = logging.getLogger(__name__)

JSON_FILE = "open_set.json"
KNOWN_GRID = "open_set_known_turned_away.png"
UNKNOWN_GRID = "open_set_unknown_accepted.png"
SHOWN = 15  # photos per grid
LISTED = 100  # photos per list in open_set.json
SCORE_WITH_THRESHOLDS = ("largest of distance / distance threshold, animal threshold / animal probability and "
                         "known-kinds threshold / known-kinds probability (when those checks are on) and confidence "
                         "threshold / confidence: above 1 is turned away")
SCORE_WITHOUT_CHECK = "1 - calibrated max probability (this model has no open-set check)"


# ---- the unknown-ness score ----------------------------------------------------------------------
def unknown_score(check, scores, confidence: np.ndarray, mode: str = OpenSetMode.ON) -> np.ndarray:
    """How unlike the model's own photos each photo is, in units of its thresholds: the largest of
    distance/t_distance, t_animal/animal, t_known/known (the known-kinds check) and t_confidence/confidence,
    so that above 1 means turned away (mode "off" is scored with the "on" thresholds). Without an open-set
    check: 1 - max probability."""
    confidence = np.asarray(confidence, np.float64)
    if check is None:
        return 1.0 - confidence
    limits = check.thresholds.get(mode) or check.thresholds[OpenSetMode.ON]
    parts = [np.asarray(scores.distance, np.float64) / limits.distance,
             limits.confidence / np.maximum(confidence, 1e-12)]
    below_checks = ((limits.animal, scores.animal), (limits.known, scores.known))
    for limit, values in below_checks:  # checks that turn away photos below their threshold
        if limit is not None and values is not None:
            parts.append(limit / np.maximum(np.asarray(values, np.float64), 1e-12))
    return np.max(parts, axis=0)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher for unknown photos (0.5: no better than chance)."""
    from sklearn.metrics import roc_auc_score

    if not len(known) or not len(unknown):
        return float("nan")
    labels = np.concatenate([np.zeros(len(known)), np.ones(len(unknown))])
    return float(roc_auc_score(labels, np.concatenate([known, unknown])))


# ---- one set of photos ---------------------------------------------------------------------------
@dataclass
class PhotoSet:
    """The answers for one set of photos (the known test photos, or one unknown folder) and their scores."""

    name: str
    predictions: list[Prediction]
    scores: np.ndarray  # (N,) unknown-ness
    skipped: list[tuple[str, str]] = field(default_factory=list)
    truth: list[str] | None = None  # the true classes, for the known photos

    def __len__(self) -> int:
        return len(self.predictions)

    def share(self, verdict: str) -> float:
        return float(np.mean([p.verdict == verdict for p in self.predictions])) if self.predictions else float("nan")

    @property
    def accepted(self) -> float:
        return self.share(CLASS)

    def reasons(self) -> dict[str, int]:
        return turned_away_reasons([p.verdict for p in self.predictions], [p.reason for p in self.predictions])

    def accepted_as(self) -> dict[str, int]:
        return dict(Counter(p.label for p in self.predictions if p.verdict == CLASS).most_common())

    @property
    def accuracy_on_answered(self) -> float:
        answered = [(p.label, true) for p, true in zip(self.predictions, self.truth or []) if p.verdict == CLASS]
        return float(np.mean([label == true for label, true in answered])) if answered else float("nan")

    def turned_away(self) -> list[int]:
        """Photos not answered with a class, the most unlike the model's own first."""
        return sorted((i for i, p in enumerate(self.predictions) if p.verdict != CLASS), key=lambda i: -self.scores[i])

    def answered(self) -> list[int]:
        """Photos answered with a class, the most confident first."""
        return sorted((i for i, p in enumerate(self.predictions) if p.verdict == CLASS),
                      key=lambda i: -self.predictions[i].confidence)


def image_files(folder: Path) -> list[Path]:
    """Every image file below `folder`, in any layout."""
    if not folder.is_dir():
        raise ConfigError("unknown", f"{folder}: not a folder")
    paths = [p for p in walk_files(folder) if is_image_name(p)]
    if not paths:
        raise ConfigError("unknown", f"{folder}: no image files in it")
    return paths


def answer_photos(model, name: str, paths: list[Path], mode: str, truth: list[str] | None = None) -> PhotoSet:
    """Features once (its bar as the caller's `progress.showing` says), then the model's answers and the
    unknown-ness score of every usable photo."""
    found = model.features_of_paths(paths, progress=shown())
    usable = [i for i, ok in enumerate(found.usable) if ok]
    truth = [truth[i] for i in usable] if truth is not None else None
    if not usable:
        return PhotoSet(name, [], np.zeros(0), list(found.problems), truth)
    features = found.features[usable]
    predictions = answers_for(model, [paths[i] for i in usable], features, mode)
    confidence = np.array([p.confidence for p in predictions])
    scores = model.open_set_scores(features) if model.open_set is not None else None
    return PhotoSet(name, predictions, unknown_score(model.open_set, scores, confidence, mode), list(found.problems),
                    truth)


# ---- the whole evaluation ------------------------------------------------------------------------
@dataclass
class OpenSetEvaluation:
    mode: str
    classes: list[str]
    known: PhotoSet
    unknown: list[PhotoSet]
    accuracy_all: float  # on every known test photo, answered or not (the published number)
    known_description: str
    method: dict  # what model.meta["open_set"] records: how the check works, its thresholds
    score: str  # the unknown-ness score, in words

    @property
    def all_unknown(self) -> PhotoSet:
        return PhotoSet("all unknown photos", [p for s in self.unknown for p in s.predictions],
                        np.concatenate([s.scores for s in self.unknown]) if self.unknown else np.zeros(0),
                        [x for s in self.unknown for x in s.skipped])

    def auroc(self, photos: PhotoSet | None = None) -> float:
        return auroc(self.known.scores, (photos or self.all_unknown).scores)

    def summary(self) -> dict:
        every = self.all_unknown
        return _json_safe({
            "mode": plain(self.mode),
            "method": self.method.get("method", "none (not fitted)"),
            "thresholds": self.method.get("thresholds", {}).get(self.mode),
            "score": self.score,
            "known": {
                "photos": len(self.known),
                "evaluated_on": self.known_description,
                "answered": self.known.accepted,
                "turned_away_count": len(self.known.turned_away()),
                "none_of_these": self.known.share(NONE_OF_THESE),
                "not_sure": self.known.share(NOT_SURE),
                "accuracy_on_answered": self.known.accuracy_on_answered,
                "accuracy_all": self.accuracy_all,
                "reasons": self.known.reasons(),
                "turned_away_photos": [_listed(self.known, i) for i in self.known.turned_away()[:LISTED]],
            },
            "unknown": [_unknown_summary(s, self.auroc(s)) for s in self.unknown],
            "unknown_all": {k: v for k, v in _unknown_summary(every, self.auroc(every)).items()
                            if k not in ("folder", "accepted_photos")},
            "auroc": self.auroc(every),
        })


def _unknown_summary(photos: PhotoSet, area: float) -> dict:
    return {
        "folder": photos.name,
        "photos": len(photos),
        "accepted": photos.accepted,
        "accepted_count": len(photos.answered()),
        "none_of_these": photos.share(NONE_OF_THESE),
        "not_sure": photos.share(NOT_SURE),
        "accepted_as": photos.accepted_as(),
        "reasons": photos.reasons(),
        "auroc": area,
        "skipped": len(photos.skipped),
        "accepted_photos": [_listed(photos, i) for i in photos.answered()[:LISTED]],
    }


def _listed(photos: PhotoSet, i: int) -> dict:
    p = photos.predictions[i]
    return {"path": p.source, "answer": p.describe(), "confidence": p.confidence, "score": float(photos.scores[i]),
            **({"true": photos.truth[i]} if photos.truth else {})}


def _json_safe(value):
    """NaN (nothing to measure) as null; numpy numbers as plain ones; floats rounded for people."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else round(float(value), 5)
    if isinstance(value, np.integer):
        return int(value)
    return value


def evaluate_open_set(model, evaluation: Evaluation, unknown_folders: list[Path], open_set: str = DEFAULT_OPEN_SET,
                      progress: bool = True) -> OpenSetEvaluation:
    """The model's answers, under mode `open_set`, for its known test photos (`evaluation`) and for every
    image file below each of `unknown_folders` (photos of none of its classes)."""
    if model.open_set is None:
        log.warning("%s has no open-set check (made before zoolens had one): it never answers 'none of these'",
                    model.path)
    folders = [Path(folder) for folder in unknown_folders]
    files = [image_files(folder) for folder in folders]  # every folder checked before the long part
    truth = [evaluation.classes[i] for i in evaluation.y_true]
    with showing(progress):
        known = answer_photos(model, "known test photos", [Path(p) for p in evaluation.paths], open_set, truth)
        unknown = [answer_photos(model, str(folder), paths, open_set) for folder, paths in zip(folders, files)]
    return OpenSetEvaluation(open_set, list(model.classes), known, unknown, evaluation.accuracy, evaluation.description,
                             model.meta.get("open_set", {}),
                             SCORE_WITH_THRESHOLDS if model.open_set is not None else SCORE_WITHOUT_CHECK)


# ---- for people ----------------------------------------------------------------------------------
def _percent(value: float) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.1%}"


def _reasons_text(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in reasons.items()) or "–"


def format_open_set(ev: OpenSetEvaluation) -> str:
    known = ev.known
    width = max([len("all unknown photos")] + [len(s.name) for s in ev.unknown])
    lines = [
        f"Photos of none of its classes (open set {ev.mode}):",
        (f"  its own {len(known)} test photos: answered {_percent(known.accepted)}, turned away "
         f"{_percent(1 - known.accepted)} (none of these {_percent(known.share(NONE_OF_THESE))}, not sure "
         f"{_percent(known.share(NOT_SURE))}); accuracy on those answered {_percent(known.accuracy_on_answered)} "
         f"(on all {_percent(ev.accuracy_all)})"),
        "",
        f"  {'unknown photos':<{width}}  {'photos':>6}  {'accepted':>8}  {'AUROC':>6}  turned away because",
    ]
    for photos in [*ev.unknown, *([ev.all_unknown] if len(ev.unknown) > 1 else [])]:
        lines.append(f"  {photos.name:<{width}}  {len(photos):>6}  {_percent(photos.accepted):>8}  "
                     f"{ev.auroc(photos):>6.3f}  {_reasons_text(photos.reasons())}")
    accepted = ev.all_unknown.accepted_as()
    if accepted:
        lines.append("  accepted as: " + ", ".join(f"{name} {count}" for name, count in accepted.items()))
    score = "each check's ratio to its threshold, the largest" if ev.score == SCORE_WITH_THRESHOLDS else ev.score
    lines.append(f"  AUROC {ev.auroc():.3f} (known 0, unknown 1; score: {score})")
    skipped = len(known.skipped) + len(ev.all_unknown.skipped)
    if skipped:
        lines.append(f"  {skipped} unusable file(s) left out")
    return "\n".join(lines)


def _known_caption(photos: PhotoSet, i: int) -> str:
    p = photos.predictions[i]
    why = p.reason if p.verdict == NONE_OF_THESE else f"not sure ({p.nearest} {p.confidence:.0%})"
    return f"{photos.truth[i]}, turned away:\n{why}"


def _unknown_caption(photos: PhotoSet, i: int) -> str:
    p = photos.predictions[i]
    return f"{p.label} ({p.confidence:.0%})\nfrom {Path(photos.name).name}"


def _grid(items: list[tuple[str, str]], path: Path, title: str) -> Path | None:
    from zoolens.evaluation.plots import plot_image_grid

    return plot_image_grid(items, path, title, columns=min(5, max(3, len(items))))


def write_open_set(ev: OpenSetEvaluation, out: Path) -> dict[str, Path]:
    """out/open_set.json and two grids: the known photos it turned away, the unknown photos it accepted
    (a grid only when there is a photo to show)."""
    out = Path(out)
    out = output_folder(out)
    written: dict[str, Path] = {}
    away = ev.known.turned_away()
    grid = _grid([(ev.known.predictions[i].source, _known_caption(ev.known, i)) for i in away[:SHOWN]],
                 out / KNOWN_GRID, f"Its own test photos it turned away ({len(away)} of {len(ev.known)})")
    if grid:
        written["open_set_known_turned_away"] = grid
    accepted = [(s, i) for s in ev.unknown for i in s.answered()]
    accepted.sort(key=lambda item: -item[0].predictions[item[1]].confidence)
    grid = _grid([(s.predictions[i].source, _unknown_caption(s, i)) for s, i in accepted[:SHOWN]], out / UNKNOWN_GRID,
                 f"Unknown photos it accepted as a class ({len(accepted)} of {len(ev.all_unknown)})")
    if grid:
        written["open_set_unknown_accepted"] = grid
    for stale in {KNOWN_GRID, UNKNOWN_GRID} - {p.name for p in written.values()}:
        (out / stale).unlink(missing_ok=True)  # an earlier run's grid would show photos this one did not pick
    summary = {**ev.summary(), "grids": {name: path.name for name, path in written.items()},
               "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    written["open_set"] = out / JSON_FILE
    written["open_set"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return written
