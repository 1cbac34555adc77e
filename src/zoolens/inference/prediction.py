"""The one answer every surface shows (`Prediction`), how inputs become images, and the one results table.

An answer is one of four verdicts: a class (with its calibrated confidence and top-k), "not sure" (one of
the known kinds, but the model cannot tell which), "none of these" (with the reason in words: no animal, a
person, an animal unlike any training photo) or an error (the photo cannot be used).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.data.images import MAX_FILE_BYTES, is_image_name, open_image
from zoolens.errors import ImageError
from zoolens.spreadsheet import to_cell

CLASS = "class"
NOT_SURE = "not sure"
NONE_OF_THESE = "none of these"
ERROR = "error"
VERDICTS = (CLASS, NOT_SURE, NONE_OF_THESE, ERROR)

# What is in a camera-trap frame, whatever the model's classes (MegaDetector's categories, and empty frames).
BLANK, ANIMAL, PERSON, VEHICLE = "blank", "animal", "person", "vehicle"
KINDS = (BLANK, ANIMAL, PERSON, VEHICLE)
log = logging.getLogger(__name__)


def with_article(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


@dataclass
class Prediction:
    source: str
    label: str | None  # the class, only when the verdict is CLASS
    confidence: float  # calibrated probability of the most likely class
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    verdict: str = ""  # CLASS, NOT_SURE, NONE_OF_THESE or ERROR (worked out from the above when not given)
    reason: str | None = None  # why "none of these": "no animal in the photo", "a person", ...
    nearest: str | None = None  # the most likely known class when the answer is not one
    detail: str | None = None  # more for people: "it looks like an espresso", "most likely Persian cat"
    names: dict[str, str] = field(default_factory=dict, repr=False)  # class -> the name people read, where it differs
    kind: str | None = None  # one of KINDS where the frame was judged (camera traps), else None
    kind_confidence: float | None = None  # how sure that judgement is

    def __post_init__(self):
        if not self.verdict:
            self.verdict = ERROR if self.error else (CLASS if self.label is not None else NOT_SURE)
        if self.verdict in (NOT_SURE, NONE_OF_THESE) and self.nearest is None and self.top:
            self.nearest = self.top[0][0]

    def name(self, label: str | None) -> str | None:
        """The name people read for one of the classes (`n02099601` -> "golden retriever"); the class otherwise."""
        return self.names.get(label, label) if label is not None else None

    @property
    def answer(self) -> str:
        """'cats', 'golden retriever', 'not sure', 'none of these' or 'error: ...'."""
        if self.verdict == ERROR:
            return f"error: {self.error}"
        return self.name(self.label) if self.verdict == CLASS else self.verdict

    @property
    def named_top(self) -> list[tuple[str, float]]:
        """`top` with the names people read."""
        return [(self.name(label), probability) for label, probability in self.top]

    def describe(self) -> str:
        """One line a person reads: 'cats (97.2 %)', 'not sure (best guess: cats, 41.0 %)',
        'none of these: a person (it looks like a suit)' or why the photo cannot be read."""
        if self.verdict == ERROR:
            return f"cannot read this photo: {self.error}"
        if self.verdict == NONE_OF_THESE:
            return f"none of these: {self.reason}" + (f" ({self.detail})" if self.detail else "")
        if self.verdict == NOT_SURE:
            return f"not sure (best guess: {self.name(self.nearest)}, {self.confidence:.1%})"
        return f"{self.name(self.label)} ({self.confidence:.1%})" + (f" — {self.detail}" if self.detail else "")


def ranked(probabilities: np.ndarray, classes: list[str], top_k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[: max(1, top_k)]
    return [(classes[i], float(probabilities[i])) for i in order]


def decide(source: str, probabilities: np.ndarray, classes: list[str], top_k: int, min_confidence: float,
           none_reason: str | None = None, looks_like: str | None = None,
           names: dict[str, str] | None = None) -> Prediction:
    """The answer for one photo's class probabilities and (when the open-set check turned it away) its reason;
    `names`: the classes' names for people, where they differ from the classes."""
    top = ranked(probabilities, classes, top_k)
    best, confidence = top[0]
    detail = f"it looks like {with_article(looks_like)}" if looks_like and none_reason else None
    names = names or {}
    if none_reason:
        return Prediction(source, None, confidence, top, verdict=NONE_OF_THESE, reason=none_reason, nearest=best,
                          detail=detail, names=names)
    if confidence < min_confidence:
        return Prediction(source, None, confidence, top, verdict=NOT_SURE, nearest=best, names=names)
    return Prediction(source, best, confidence, top, verdict=CLASS, names=names)


def failed(source: str, problem: str) -> Prediction:
    return Prediction(source, None, 0.0, error=problem, verdict=ERROR)


# ---- inputs ---------------------------------------------------------------------------------------
def input_list(inputs) -> list:
    """One photo (a path, a PIL image, bytes or an open binary file) or a list of them, as a list; a folder among them
    stands for its photos, walked as `zoolens predict` walks it (`folder_photos`). Every one of them becomes pixels by
    `transforms.network_pixels` (a PIL image is taken as already decoded: see `transforms.decode_for_network`)."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return [photo for item in items for photo in (folder_photos(item) if is_folder(item) else [item])]


def is_path(item) -> bool:
    return isinstance(item, (str, Path))


def is_folder(item) -> bool:
    return is_path(item) and os.path.isdir(item)  # False, not an error, for a path the system cannot stat


def folder_photos(folder) -> list[Path]:
    """The photos below a folder, in a stable order, as every command takes them: the files named as photos
    (`images.is_image_name`), hidden ones and links to folders left out (`folders.walk_files`: sorted, a folder
    that cannot be listed logged). A folder without any is logged too: it has no answer."""
    from zoolens.data.folders import walk_files

    photos = [path for path in walk_files(Path(folder)) if is_image_name(path)]
    if not photos:
        log.warning("%s: no photo files in this folder", folder)
    return photos


def source_name(item, position: int) -> str:
    """What a result calls its photo: the path, an upload's file name, or '<image N>'."""
    if is_path(item):
        return str(item)
    return str(getattr(item, "filename", None) or getattr(item, "name", None) or f"<image {position + 1}>")


def as_photo(item):
    """An input as `transforms.network_pixels` and `open_image` take it, and as it can be opened again (by the person
    check): a path as a Path, bytes-like as bytes, an open binary file as its bytes (read once, bounded), a PIL image
    as it is."""
    if is_path(item):
        return Path(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if hasattr(item, "read") and not isinstance(item, Image.Image):
        return item.read(MAX_FILE_BYTES + 1)  # one byte over the limit: open_image then says it is too large
    return item


def open_input(item, min_side: int | None = None):
    """A PIL image for a path, image, bytes or open file; raises ImageError naming the problem."""
    return open_image(as_photo(item), min_side=min_side)


def opened_inputs(inputs, min_side: int | None = None) -> list[tuple[str, object, str | None]]:
    """(source, image or None, problem or None) for each input, in order."""
    opened = []
    for position, item in enumerate(input_list(inputs)):
        source = source_name(item, position)
        try:
            opened.append((source, open_input(item, min_side), None))
        except ImageError as error:
            opened.append((source, None, error.reason))
    return opened


# ---- the results table (CSV, Parquet, the web app's download) -------------------------------------
def table_columns(top_k: int) -> list[str]:
    columns = ["path", "verdict", "label", "label_name", "confidence", "reason", "nearest", "nearest_name"]
    for i in range(1, top_k + 1):
        columns += [f"top{i}_label", f"top{i}_name", f"top{i}_confidence"]
    return columns + ["error"]


def table_row(prediction: Prediction, top_k: int) -> dict:
    """One photo's row: `label` is set only for a class; `verdict` says which of the four answers it is. Each
    class is there as the model knows it (`label`, its class folder's name) and as people read it (`label_name`)."""
    row = {"path": prediction.source, "verdict": prediction.verdict, "label": prediction.label,
           "label_name": prediction.name(prediction.label),
           "confidence": None if prediction.error else prediction.confidence, "reason": prediction.reason,
           "nearest": prediction.nearest, "nearest_name": prediction.name(prediction.nearest)}
    for i in range(top_k):
        label, probability = prediction.top[i] if i < len(prediction.top) else (None, None)
        row[f"top{i + 1}_label"], row[f"top{i + 1}_name"] = label, prediction.name(label)
        row[f"top{i + 1}_confidence"] = probability
    row["error"] = prediction.error
    return row


def write_csv(predictions: list[Prediction], path: Path, top_k: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        csv_text(predictions, top_k, handle)
    return Path(path)


def csv_text(predictions: list[Prediction], top_k: int, handle=None) -> str:
    """The table as CSV, into `handle` or returned as text (the web app's download); text cells by the spreadsheet
    rule (zoolens/spreadsheet.py): a photo named `=x.jpg` is written `'=x.jpg`."""
    import csv
    import io

    target = handle if handle is not None else io.StringIO()
    writer = csv.DictWriter(target, fieldnames=table_columns(top_k), lineterminator="\n")
    writer.writeheader()
    for prediction in predictions:
        row = table_row(prediction, top_k)
        writer.writerow({key: (f"{value:.6f}" if isinstance(value, float) else "" if value is None else to_cell(value))
                         for key, value in row.items()})
    return "" if handle is not None else target.getvalue()
