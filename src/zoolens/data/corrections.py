"""Corrections: a person's decisions about flagged photos, kept in a CSV file and never made by touching the
photos. Each row names a photo as it lies under the data folder and what to do with it:

    path,action,label
    cats/cats_00042.jpg,relabel,dogs        # train and evaluate it as a dog
    panda/panda_00007.jpg,exclude,          # leave it out of every part
    dogs/dogs_00003.jpg,keep,               # looked at: its label is right (no longer flagged)

An empty action is a photo not decided yet (the file `zoolens data issues` writes starts that way); other columns
(given, suggested, score) are kept for the reader and ignored. `zoolens train`, `kfold`, `study`, `tune` and
`data split` take the file as `--corrections FILE`; a model records which file and its SHA-256.

Corrections are applied to a split, not before it: a relabelled photo stays in the part it was in, so the same
test photos judge a model before and after the corrections."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from zoolens.data.folders import Sample
from zoolens.errors import ZoolensError
from zoolens.files import read_limited, relative_inside, replaced_atomically

log = logging.getLogger("zoolens")

ACTIONS = ("relabel", "exclude", "keep")
COLUMNS = ["path", "action", "label"]
MAX_CORRECTIONS_BYTES = 256 << 20


@dataclass
class Corrections:
    """The decisions of one corrections file: relabels (path → class), exclusions and photos kept as they are;
    paths are relative to the data folder, with forward slashes."""

    file: Path | None = None
    sha256: str = ""
    relabel: dict[str, str] = field(default_factory=dict)
    exclude: set[str] = field(default_factory=set)
    keep: set[str] = field(default_factory=set)
    rows: list[dict] = field(default_factory=list)  # every row as read, undecided ones too, in the file's order

    def decided(self) -> set[str]:
        return set(self.relabel) | self.exclude | self.keep

    def decision(self, path: str) -> tuple[str, str]:
        """(action, label) decided for the photo at `path` (relative to the data folder); ("", "") when undecided."""
        if path in self.relabel:
            return "relabel", self.relabel[path]
        return ("exclude", "") if path in self.exclude else ("keep", "") if path in self.keep else ("", "")

    def record(self) -> dict:
        """What a model's zoolens.json says about the corrections it was trained with."""
        return {"file": str(self.file.resolve()) if self.file else None, "sha256": self.sha256,
                "relabelled": len(self.relabel), "excluded": len(self.exclude), "kept": len(self.keep)}

    def apply(self, manifest):
        """The manifest with relabelled photos under their new class and excluded photos left out; the parts,
        the classes and every other photo as they were. Unknown classes were refused when the file was read
        against these classes (`read_corrections(..., classes)`)."""
        from zoolens.data.split import Manifest

        root, rows, used = manifest.root, [], set()
        for sample, role in manifest.rows:
            key = relative_key(sample.path, root)
            if key in self.exclude:
                used.add(key)
                continue
            if key in self.relabel:
                used.add(key)
                sample = Sample(sample.path, self.relabel[key])
            rows.append((sample, role))
        unused = sorted(key for key in (set(self.relabel) | self.exclude) - used if not (root / key).exists())
        if unused:
            log.warning("%s: %d correction(s) name photos that are not in %s (e.g. %s); they were left alone",
                        self.file, len(unused), root, unused[0])
        return Manifest(root=root, classes=manifest.classes, rows=rows)


def relative_key(path: str | Path, root: str | Path) -> str:
    """How a corrections file names a photo: its path under the data folder, with forward slashes."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def read_corrections(path: str | Path, classes: list[str] | None = None) -> Corrections:
    """The decisions in `path`; a relabel to a class that is not one of `classes`, an unknown action, a path
    outside the data folder or two different decisions for one photo refuse the file, naming the line."""
    path = Path(path)
    try:
        data = read_limited(path, MAX_CORRECTIONS_BYTES)  # one bounded read: the rows parsed are the bytes hashed
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", "surrogateescape"), newline=""))
        if reader.fieldnames is None or not {"path", "action"} <= set(reader.fieldnames):
            raise ZoolensError(f"{path}: not a corrections file (needs path,action,label columns)")
        rows = [dict(row) for row in reader]
    except (OSError, csv.Error) as error:
        raise ZoolensError(f"{path}: cannot read the corrections file ({error})") from None
    corrections = Corrections(file=path, sha256=hashlib.sha256(data).hexdigest(), rows=rows)
    decisions: dict[str, tuple[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        relative, action, label = _decision(path, line, row, classes)
        if not action:
            continue
        if decisions.get(relative, (action, label)) != (action, label):
            raise ZoolensError(f"{path}: line {line}: a second, different decision for {relative}")
        decisions[relative] = (action, label)
        if action == "relabel":
            corrections.relabel[relative] = label
        else:
            getattr(corrections, action).add(relative)
    return corrections


def _decision(path: Path, line: int, row: dict, classes: list[str] | None) -> tuple[str, str, str]:
    relative = (row.get("path") or "").strip()
    action = (row.get("action") or "").strip().lower()
    label = (row.get("label") or "").strip()
    if not relative_inside(relative):
        raise ZoolensError(f"{path}: line {line}: {relative!r} is not a photo inside the data folder")
    if action and action not in ACTIONS:
        raise ZoolensError(f"{path}: line {line}: action {action!r}: write relabel, exclude or keep (or leave it "
                           "empty: not decided)")
    if action == "relabel":
        if not label:
            raise ZoolensError(f"{path}: line {line}: relabel {relative} to which class? (the label column is empty)")
        if classes is not None and label not in classes:
            raise ZoolensError(f"{path}: line {line}: {label!r} is not a class of this dataset "
                               f"({', '.join(classes)})")
    return relative.replace("\\", "/"), action, label


def write_corrections(path: str | Path, rows: list[dict]) -> Path:
    """`rows` (path, action, label and any other columns) written whole, replacing the file in one step."""
    columns = COLUMNS + [name for name in dict.fromkeys(k for row in rows for k in row) if name not in COLUMNS]
    path = Path(path)
    with replaced_atomically(path) as temporary, \
            open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def record_decision(path: str | Path, photo: str, action: str, label: str = "", **details) -> Corrections:
    """One photo's decision written into the corrections file at `path` (made if missing), replacing an earlier
    decision for it; the file's other rows kept in their order. `action` "" takes the decision back."""
    return record_decisions(path, [{"path": photo, "action": action, "label": label, **details}])


def record_decisions(path: str | Path, decisions: list[dict]) -> Corrections:
    """Decisions (path, action, label and any other columns) written into the corrections file at `path` (made if
    missing) in one step, each replacing an earlier decision for its photo; the file's other rows kept in their
    order, new photos after them."""
    for decision in decisions:
        if decision["action"] and decision["action"] not in ACTIONS:
            raise ZoolensError(f"{decision['action']!r}: a decision is relabel, exclude or keep")
    path = Path(path)
    rows = read_corrections(path).rows if path.exists() else []
    where = {(row.get("path") or "").strip(): row for row in rows}
    for decision in decisions:
        new = {**decision, "label": decision.get("label", "") if decision["action"] == "relabel" else ""}
        if new["path"] in where:
            where[new["path"]].update({k: v for k, v in new.items() if k in COLUMNS or k not in where[new["path"]]})
        else:
            rows.append(new)
            where[new["path"]] = new
    write_corrections(path, rows)
    return read_corrections(path)


def corrected(manifest, corrections_file: str | Path | None):
    """`manifest` with the decisions of `corrections_file` applied (unchanged without one), and the Corrections."""
    if not corrections_file:
        return manifest, None
    corrections = read_corrections(corrections_file, manifest.classes)
    return corrections.apply(manifest), corrections
