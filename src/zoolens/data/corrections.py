"""Corrections: a person's decisions about flagged photos, kept in a CSV file and never made by touching the
photos. Each row names a photo as it lies under the data folder and what to do with it:

    path,action,label
    cats/cats_00042.jpg,relabel,dogs        # train and evaluate it as a dog
    panda/panda_00007.jpg,exclude,          # leave it out of every part
    dogs/dogs_00003.jpg,keep,               # looked at: its label is right (no longer flagged)

An empty action is a photo not decided yet (the file `zoolens data issues` writes starts that way); other columns
(given, suggested, score) are kept for the reader and ignored. A path is taken as the folder scan writes it:
`./cats/x.jpg`, `cats//x.jpg` and `cats\\x.jpg` all name `cats/x.jpg`. Cells follow the spreadsheet rule of
zoolens/spreadsheet.py (`'=x.jpg` names the photo `=x.jpg`).

The file is read row by row as it is hashed, keeping only the decided rows: a file of millions of undecided rows
reads in bounded memory. Every change to it (`record_decisions`, `refresh_review`) is one read-modify-write under
the file's lock (files.update_lock), so any number of processes and threads writing it at once keep every decision.

`zoolens train`, `kfold`, `study`, `tune` and `data split` take the file as `--corrections FILE`; a model records
which file and its SHA-256, and how many of its decisions found their photo.

Corrections are applied to a split, not before it: a relabelled photo stays in the part it was in, so the same
test photos judge a model before and after the corrections."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zoolens.data.folders import Sample
from zoolens.errors import ZoolensError
from zoolens.files import regular_file, relative_inside, replaced_atomically, update_lock
from zoolens.spreadsheet import from_cell, to_cell, to_cells

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
    rows: list[dict] = field(default_factory=list)  # each decided photo's row as read (its first), in the file's order
    applied: dict[str, int] | None = None  # what `apply` found photos for: relabelled, excluded, kept

    def decided(self) -> set[str]:
        return set(self.relabel) | self.exclude | self.keep

    def decision(self, path: str) -> tuple[str, str]:
        """(action, label) decided for the photo at `path` (relative to the data folder); ("", "") when undecided."""
        if path in self.relabel:
            return "relabel", self.relabel[path]
        return ("exclude", "") if path in self.exclude else ("keep", "") if path in self.keep else ("", "")

    def add(self, line: int, row: dict, classes: list[str] | None = None) -> None:
        """The decision of `row` (line `line` of the file), if it has one; a wrong one refuses the file."""
        relative, action, label = _decision(self.file, line, row, classes)
        if not action:
            return
        earlier = self.decision(relative)
        if earlier == (action, label):
            return
        if earlier != ("", ""):
            raise ZoolensError(f"{self.file}: line {line}: a second, different decision for {relative}")
        if action == "relabel":
            self.relabel[relative] = label
        else:
            getattr(self, action).add(relative)
        self.rows.append({**row, "path": relative})

    def record(self) -> dict:
        """What a model's zoolens.json says about the corrections it was trained with: once applied to a split, the
        decisions that found their photo in it (a row naming no photo of the split changed nothing)."""
        counts = self.applied or {"relabelled": len(self.relabel), "excluded": len(self.exclude),
                                  "kept": len(self.keep)}
        return {"file": str(self.file.resolve()) if self.file else None, "sha256": self.sha256, **counts}

    def apply(self, manifest):
        """The manifest with relabelled photos under their new class and excluded photos left out; the parts,
        the classes and every other photo as they were. Unknown classes were refused when the file was read
        against these classes (`read_corrections(..., classes)`). `applied` counts the decisions that found their
        photo."""
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
            elif key in self.keep:
                used.add(key)
            rows.append((sample, role))
        self.applied = {"relabelled": len(used & set(self.relabel)), "excluded": len(used & self.exclude),
                        "kept": len(used & self.keep)}
        unused = sorted((set(self.relabel) | self.exclude) - used)
        if unused:
            log.warning("%s: %d correction(s) name photos that are not in the split of %s (e.g. %s); they were left "
                        "alone", self.file, len(unused), root, unused[0])
        return Manifest(root=root, classes=manifest.classes, rows=rows, groups=manifest.groups,
                        grouping=manifest.grouping)


def relative_key(path: str | Path, root: str | Path) -> str:
    """How a corrections file names a photo: its path under the data folder, with forward slashes."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def photo_key(text: str) -> str:
    """A path as a corrections file may write it, as the folder scan names the photo: forward slashes, no `.` steps
    or doubled slashes (`./cats//x.jpg` is `cats/x.jpg`). Not checked: see `_decision`."""
    return PurePosixPath(text.strip().replace("\\", "/")).as_posix() if text.strip() else ""


# ---- reading, row by row ------------------------------------------------------------------------------
class _Hashed(io.RawIOBase):
    """A file's bytes as they are read, hashed on the way and refused past `limit`: the rows parsed are the bytes
    hashed, and a file that grows while read is stopped."""

    def __init__(self, raw, path: Path, limit: int):
        self.raw, self.path, self.limit, self.size, self.digest = raw, path, limit, 0, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if count:
            self.size += count
            if self.size > self.limit:
                raise ZoolensError(f"{self.path}: too large (over {self.limit:,} bytes)")
            self.digest.update(memoryview(buffer)[:count])
        return count


class _Rows:
    """A corrections file opened for reading: `header` (its column names) and its rows, as lists of cells as they
    are written (spreadsheet quotes and all), parsed one at a time while the bytes are hashed (`sha256` once they
    are all read). A missing file has no rows when `missing_ok`."""

    def __init__(self, path: Path, missing_ok: bool = False):
        self.path, self.missing_ok, self.header, self.at, self.bytes = path, missing_ok, [], {}, None

    def __enter__(self) -> _Rows:
        try:
            regular_file(self.path, MAX_CORRECTIONS_BYTES)  # a FIFO would block the reader, /dev/zero never ends
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # swapped for a FIFO since: no block
        except FileNotFoundError:
            if self.missing_ok:
                self.reader = iter(())
                return self
            raise ZoolensError(f"{self.path}: no such corrections file") from None
        except OSError as error:
            raise ZoolensError(f"{self.path}: cannot read the corrections file ({error})") from None
        raw = os.fdopen(fd, "rb", buffering=0)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raw.close()
            raise ZoolensError(f"{self.path}: not a regular file (a FIFO, device, socket or folder)")
        self.bytes = _Hashed(raw, self.path, MAX_CORRECTIONS_BYTES)
        self.text = io.TextIOWrapper(io.BufferedReader(self.bytes), encoding="utf-8-sig", errors="surrogateescape",
                                     newline="")
        self.reader = csv.reader(self.text)
        header = self._next()
        self.header = [from_cell(name) for name in header or []]
        if not {"path", "action"} <= set(self.header):
            self.text.close()
            raise ZoolensError(f"{self.path}: not a corrections file (needs path,action,label columns)")
        self.at = {name: self.header.index(name) for name in set(self.header)}
        return self

    def __exit__(self, *exc) -> None:
        if self.bytes is not None:
            self.text.close()

    def _next(self) -> list[str] | None:
        try:
            return next(self.reader, None)
        except (OSError, csv.Error) as error:
            raise ZoolensError(f"{self.path}: cannot read the corrections file ({error})") from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) of each row; the line is the row's number counting the header as line 1."""
        line = 1
        while (cells := self._next()) is not None:
            line += 1
            yield line, cells

    def cell(self, cells: list[str], name: str) -> str:
        index = self.at.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    def row(self, cells: list[str]) -> dict:
        """A row's cells by column name, as the text they stand for (spreadsheet.from_cell)."""
        return {name: from_cell(cells[i]) if i < len(cells) else "" for i, name in enumerate(self.header)}

    @property
    def sha256(self) -> str:
        return self.bytes.digest.hexdigest() if self.bytes is not None else hashlib.sha256().hexdigest()


def read_corrections(path: str | Path, classes: list[str] | None = None) -> Corrections:
    """The decisions in `path`; a relabel to a class that is not one of `classes`, an unknown action, a path
    outside the data folder or two different decisions for one photo refuse the file, naming the line. Read row by
    row, keeping the decided rows only."""
    path = Path(path)
    corrections = Corrections(file=path)
    with _Rows(path) as rows:
        for line, cells in rows:
            if rows.cell(cells, "action").strip():  # undecided rows (most of a review file) cost nothing to keep
                corrections.add(line, rows.row(cells), classes)
        corrections.sha256 = rows.sha256
    return corrections


def _decision(path: Path, line: int, row: dict, classes: list[str] | None) -> tuple[str, str, str]:
    relative = (row.get("path") or "").strip()
    action = (row.get("action") or "").strip().lower()
    label = (row.get("label") or "").strip()
    if action and (not relative_inside(relative) or photo_key(relative) == "."):
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
    return photo_key(relative), action, label


# ---- writing -------------------------------------------------------------------------------------------
def write_corrections(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """`rows` (path, action, label and any other columns) written whole, replacing the file in one step; `columns`
    in that order (path, action, label, then the rows' other keys, when not given). Not for a file a person may be
    deciding in: `record_decisions` and `refresh_review` keep the decisions already in it."""
    columns = columns or COLUMNS + [name for name in dict.fromkeys(k for row in rows for k in row)
                                    if name not in COLUMNS]
    path = Path(path)
    with replaced_atomically(path) as temporary, \
            open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(to_cells(columns))
        writer.writerows(to_cells(row.get(name, "") for name in columns) for row in rows)
    return path


def record_decision(path: str | Path, photo: str, action: str, label: str = "", **details) -> Corrections:
    """One photo's decision written into the corrections file at `path` (made if missing), replacing an earlier
    decision for it; the file's other rows kept in their order. `action` "" takes the decision back."""
    return record_decisions(path, [{"path": photo, "action": action, "label": label, **details}])


def record_decisions(path: str | Path, decisions: list[dict]) -> Corrections:
    """Decisions (path, action, label and any other columns) written into the corrections file at `path` (made if
    missing) in one step, each replacing an earlier decision for its photo; the file's other rows kept in their
    order, new photos after them. One read-modify-write under the file's lock: writers at once (processes, threads,
    `refresh_review`) each keep their decisions. A file `read_corrections` refuses is left as it is."""
    path = Path(path)
    wanted: dict[str, dict] = {}
    for decision in decisions:
        action, key = decision["action"], photo_key(decision["path"])
        if action and action not in ACTIONS:
            raise ZoolensError(f"{action!r}: a decision is relabel, exclude or keep")
        if not relative_inside(decision["path"].strip()) or key == ".":
            raise ZoolensError(f"{decision['path']!r}: not a photo inside the data folder")
        wanted[key] = {**decision, "path": key, "label": decision.get("label", "") if action == "relabel" else ""}
    with update_lock(path):
        _rewrite(path, wanted)
    return read_corrections(path)


def _rewrite(path: Path, wanted: dict[str, dict]) -> None:
    """The file at `path` written again with the `wanted` decisions (photo key -> row): every row of such a photo
    updated in place (its path, action and label; its other cells only where empty), the other rows as they were,
    new photos after them. The decisions already there are checked as `read_corrections` checks them before the
    file is replaced. Streamed: the memory is one row's, and the decided rows'."""
    with _Rows(path, missing_ok=True) as rows, replaced_atomically(path) as temporary, \
            open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        header = rows.header
        names = dict.fromkeys([*COLUMNS, *(name for decision in wanted.values() for name in decision)])
        columns = header + [name for name in names if name not in header]
        at = {name: columns.index(name) for name in set(columns)}
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(to_cells(columns))
        checked, found = Corrections(file=path), set()
        for line, cells in rows:
            cells = cells[: len(header)] + [""] * (len(columns) - min(len(cells), len(header)))
            key = photo_key(from_cell(rows.cell(cells, "path")))
            if key in wanted:
                found.add(key)
                for name, value in wanted[key].items():
                    if name in COLUMNS or not cells[at[name]]:
                        cells[at[name]] = to_cell(value)
            elif rows.cell(cells, "action").strip():
                checked.add(line, rows.row(cells))
            writer.writerow(cells)
        writer.writerows(to_cells(decision.get(name, "") for name in columns)
                         for key, decision in wanted.items() if key not in found)


def refresh_review(path: str | Path, flags: list[dict], columns: list[str]) -> Path:
    """The review file at `path` (`zoolens data issues`' to_review.csv) made anew from `flags`, the flagged photos
    undecided, keeping every decision a person wrote in it: a flagged photo already decided keeps its row as it
    is, in its flag's place; decided rows of photos no longer flagged follow; undecided rows give way to the flags.
    A decided row is kept even where `read_corrections` would refuse it (the person's words are theirs to mend),
    columns a person added too. Under the file's lock, like `record_decisions`: a review page deciding in the same
    file at the same time loses nothing."""
    path = Path(path)
    with update_lock(path):
        decided: dict[str, list[dict]] = {}
        with _Rows(path, missing_ok=True) as rows:
            for _, cells in rows:
                if rows.cell(cells, "action").strip():
                    row = rows.row(cells)
                    decided.setdefault(photo_key(row.get("path") or ""), []).append(row)
            added = [name for name in rows.header if name not in columns]
        kept = []
        for flag in flags:
            kept += decided.pop(photo_key(flag["path"]), None) or [flag]
        kept += [row for group in decided.values() for row in group]
        return write_corrections(path, kept, columns + added)


def corrected(manifest, corrections_file: str | Path | None):
    """`manifest` with the decisions of `corrections_file` applied (unchanged without one), and the Corrections."""
    if not corrections_file:
        return manifest, None
    corrections = read_corrections(corrections_file, manifest.classes)
    return corrections.apply(manifest), corrections
