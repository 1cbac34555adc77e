"""Stratified, deterministic train/val/test splits, written as a CSV manifest (never by copying files)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoolens.data.folders import ImageFolder, Sample
from zoolens.errors import ConfigError, ZoolensError
from zoolens.files import regular_file, relative_inside, replaced_atomically
from zoolens.spreadsheet import from_cell, to_cells

ROLES = ("train", "val", "test")
# Share of a train part held out for early stopping when the user's split has no validation part.
CARVED_VAL_SHARE = 0.125
MAX_MANIFEST_BYTES = 1 << 30  # ten million rows of long paths; a larger split.csv is refused unread


@dataclass
class Manifest:
    root: Path
    classes: list[str]
    rows: list[tuple[Sample, str]]

    def part(self, role: str) -> list[Sample]:
        return [sample for sample, row_role in self.rows if row_role == role]

    def counts(self) -> dict[str, dict[str, int]]:
        table = {role: {name: 0 for name in self.classes} for role in ROLES}
        for sample, role in self.rows:
            table[role][sample.label] += 1
        return table


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'70/10/20' -> train/val/test; '80/20' -> train/test (validation is then carved from train)."""
    try:
        numbers = [float(part) for part in str(text).replace(":", "/").split("/")]
    except ValueError:
        raise ConfigError("ratios", f"{text!r}: write them like 70/10/20 or 80/20") from None
    if len(numbers) == 2:
        numbers = [numbers[0], 0.0, numbers[1]]
    if len(numbers) != 3 or min(numbers) < 0 or numbers[0] <= 0:
        raise ConfigError("ratios", f"{text!r}: give train/val/test (70/10/20) or train/test (80/20)")
    total = sum(numbers)
    return tuple(n / total for n in numbers)  # type: ignore[return-value]


def _allocate(n: int, ratios: tuple[float, float, float]) -> list[int]:
    """Per-class counts by largest remainder, keeping at least one training photo per class.

    Hand-written instead of sklearn's stratified splitters because those refuse classes with fewer
    photos than parts, and real folders do have classes of one or two photos.
    """
    exact = [n * r for r in ratios]
    counts = [int(x) for x in exact]
    for i in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    for donor in (1, 2):
        if counts[0] == 0 and counts[donor] > 0:
            counts[donor] -= 1
            counts[0] += 1
    return counts


def _class_seed(seed: int, label: str) -> int:
    # Stable across runs and Python versions (hash() is salted per process).
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "little")


def _stratified_rows(samples: list[Sample], ratios, seed: int) -> list[tuple[Sample, str]]:
    by_class: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: str(s.path)):
        by_class.setdefault(sample.label, []).append(sample)
    rows = []
    for label, members in sorted(by_class.items()):
        order = np.random.default_rng(_class_seed(seed, label)).permutation(len(members))
        n_train, n_val, _ = _allocate(len(members), ratios)
        for rank, index in enumerate(order):
            role = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            rows.append((members[index], role))
    return rows


def _carve_validation(rows, seed: int) -> list[tuple[Sample, str]]:
    train = [sample for sample, role in rows if role == "train"]
    rest = [(sample, role) for sample, role in rows if role != "train"]
    carved = _stratified_rows(train, (1 - CARVED_VAL_SHARE, CARVED_VAL_SHARE, 0.0), seed)
    return carved + rest


def split_folder(folder: ImageFolder, ratios="70/10/20", seed: int = 0) -> Manifest:
    """Assign every photo a role. A folder that is already split keeps its parts: a missing
    validation part is carved from train, and a `val` folder with no `test` beside it is the
    held-out test part (public datasets such as Imagewoof name their evaluation split `val`)."""
    if folder.presplit:
        roles = dict(folder.parts)
        if "test" not in roles.values():
            roles = {path: ("test" if role == "val" else role) for path, role in roles.items()}
        rows = [(sample, roles[sample.path]) for sample in folder.samples]
        if "val" not in roles.values():
            rows = _carve_validation(rows, seed)
    else:
        ratios = parse_ratios(ratios) if isinstance(ratios, str) else tuple(ratios)
        rows = _stratified_rows(folder.samples, ratios, seed)
        if ratios[1] == 0:
            rows = _carve_validation(rows, seed)
    rows.sort(key=lambda row: (ROLES.index(row[1]), row[0].label, str(row[0].path)))
    return Manifest(root=folder.root, classes=folder.classes, rows=rows)


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    """path,label,split per photo; text cells by the spreadsheet rule (zoolens/spreadsheet.py), which
    `read_manifest` undoes."""
    path = Path(path)
    with replaced_atomically(path) as temporary, \
            open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for sample, role in manifest.rows:
            writer.writerow(to_cells([sample.path.relative_to(manifest.root).as_posix(), sample.label, role]))
    return path


def _manifest_row(path: Path, root: Path, line: int, row: dict) -> tuple[Sample, str]:
    """One row of a manifest, which may come from a model folder someone sent: only photos inside `root` (the
    data folder the user named) are ever read, so `../x.jpg` or `/etc/passwd` refuse the whole manifest."""
    relative, label, role = (from_cell(row.get(name)) for name in ("path", "label", "split"))
    if not isinstance(relative, str) or not isinstance(label, str) or not isinstance(role, str):
        raise ZoolensError(f"{path}: line {line}: needs a path, a label and a split")
    if not relative_inside(relative):
        raise ZoolensError(f"{path}: line {line}: {relative!r} is not a photo inside the data folder {root}; "
                           "zoolens reads only photos inside the folder it is given")
    return Sample(root / relative, label), role


def split_or_manifest(folder: ImageFolder, ratios="70/10/20", seed: int = 0,
                      split_file: str | Path | None = None) -> Manifest:
    """The split a run works on: the manifest `split_file` when one is given, else `folder` split by `ratios` and
    `seed` (`split_folder`)."""
    return read_manifest(split_file, folder.root) if split_file else split_folder(folder, ratios, seed)


def read_manifest(path: str | Path, root: str | Path) -> Manifest:
    path, root = Path(path), Path(root)
    try:
        regular_file(path, MAX_MANIFEST_BYTES)  # a FIFO would block the reader, /dev/zero never ends
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"path", "label", "split"} <= set(reader.fieldnames):
                raise ZoolensError(f"{path}: not a zoolens split manifest (needs path,label,split columns)")
            rows = [_manifest_row(path, root, number, row) for number, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ZoolensError(f"{path}: cannot read the split manifest ({error})") from None
    unknown = {role for _, role in rows} - set(ROLES)
    if unknown:
        raise ZoolensError(f"{path}: unknown split names {sorted(unknown)} (expected train, val, test)")
    classes = sorted({sample.label for sample, _ in rows})
    return Manifest(root=root, classes=classes, rows=rows)
