"""Stratified, deterministic train/val/test splits, written as a CSV manifest (never by copying files). Where photos
come in groups that must stay together (a camera-trap event's frames; a camera's or a site's, when asked: see
data.grouping), the split is stratified over whole groups."""

from __future__ import annotations

import csv
import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoolens.choices import DEFAULT_RATIOS, SplitPart
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S
from zoolens.data.folders import ImageFolder, Sample
from zoolens.data.grouping import Groups, groups_across_parts, resolve_group_by, sample_groups
from zoolens.errors import ConfigError, ZoolensError
from zoolens.files import regular_file, relative_inside, replaced_atomically
from zoolens.spreadsheet import from_cell, to_cells

ROLES = SplitPart.values()  # the order a manifest lists them in
TRAIN, VAL, TEST = ROLES  # plain words in the rows, as a manifest read back has them
# Share of a train part held out for early stopping when the user's split has no validation part.
CARVED_VAL_SHARE = 0.125
MAX_MANIFEST_BYTES = 1 << 30  # ten million rows of long paths; a larger split.csv is refused unread
# A grouped split deals whole groups into this many stratified folds (scikit-learn's StratifiedGroupKFold), then
# the folds to the parts: 5 % steps, as close to the asked ratios as the groups' sizes allow.
GROUPED_FOLDS = 20

log = logging.getLogger(__name__)


@dataclass
class Manifest:
    root: Path
    classes: list[str]
    rows: list[tuple[Sample, str]]
    groups: Groups | None = None  # what the split kept together, where it was grouped
    grouping: str = ""  # a line saying how it was grouped and the parts' shares obtained

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
            role = TRAIN if rank < n_train else VAL if rank < n_train + n_val else TEST
            rows.append((members[index], role))
    return rows


def _grouped_rows(samples: list[Sample], groups: Groups, ratios, seed: int) -> list[tuple[Sample, str]]:
    """Whole groups to parts, stratified by label: scikit-learn's StratifiedGroupKFold deals the groups into up to
    GROUPED_FOLDS folds of like class shares, and the folds go to the parts, largest first, each to the part
    furthest below its share. A class left with no training photo gets its smallest group moved into train."""
    from sklearn.model_selection import StratifiedGroupKFold

    ordered = sorted(samples, key=lambda s: str(s.path))
    names = [groups.of[s.path] for s in ordered]
    labels = [s.label for s in ordered]
    # scikit-learn deals no more folds than there are groups, nor than the largest class has photos
    folds = min(GROUPED_FOLDS, len(set(names)), max(labels.count(label) for label in set(labels)))
    if folds < 2:
        return [(sample, TRAIN) for sample in ordered]
    fold_of = np.zeros(len(ordered), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed % 2**32)
    with warnings.catch_warnings():  # "the least populated class has fewer members than n_splits": it still deals
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held) in enumerate(splitter.split(np.zeros(len(ordered)), labels, names)):
            fold_of[held] = fold
    part_of_fold = _parts_of_folds(np.bincount(fold_of, minlength=folds), ratios, seed)
    roles = [part_of_fold[fold] for fold in fold_of]
    _train_every_class(ordered, names, roles)
    return list(zip(ordered, roles))


def _parts_of_folds(sizes: np.ndarray, ratios, seed: int) -> list[str]:
    targets = np.asarray(ratios, dtype=float) * sizes.sum()
    filled = np.zeros(3)
    parts = [""] * len(sizes)
    order = np.random.default_rng(seed).permutation(len(sizes))
    for fold in sorted(order, key=lambda fold: -sizes[fold]):  # largest first; ties in the seed's order
        wanting = [i for i in range(3) if targets[i] > 0]
        part = max(wanting, key=lambda i: targets[i] - filled[i])
        filled[part] += sizes[fold]
        parts[fold] = ROLES[part]
    return parts


def _train_every_class(samples: list[Sample], names: list[str], roles: list[str]) -> None:
    for label in sorted({s.label for s in samples}):
        members = [i for i, s in enumerate(samples) if s.label == label]
        if any(roles[i] == TRAIN for i in members):
            continue
        size = {name: names.count(name) for name in {names[i] for i in members}}
        smallest = min(size, key=lambda name: (size[name], name))
        log.info("no group of %s photos was dealt to the training part: its smallest group (%d photos) goes there",
                 label, size[smallest])
        for i, name in enumerate(names):
            if name == smallest:
                roles[i] = TRAIN


def _carve_validation(rows, seed: int, groups: Groups | None = None) -> list[tuple[Sample, str]]:
    train = [sample for sample, role in rows if role == TRAIN]
    rest = [(sample, role) for sample, role in rows if role != TRAIN]
    shares = (1 - CARVED_VAL_SHARE, CARVED_VAL_SHARE, 0.0)
    carved = _grouped_rows(train, groups, shares, seed) if groups else _stratified_rows(train, shares, seed)
    return carved + rest


def split_folder(folder: ImageFolder, ratios=DEFAULT_RATIOS, seed: int = 0, group_by: str | None = None,
                 sequence_gap: float = DEFAULT_SEQUENCE_GAP_S) -> Manifest:
    """Assign every photo a role. A folder that is already split (or a labels CSV with a split column) keeps its
    parts: a missing validation part is carved from train, and a `val` folder with no `test` beside it is the
    held-out test part (public datasets such as Imagewoof name their evaluation split `val`).

    `group_by` (event, camera, site, none; data.grouping) keeps each group's photos in one part. Unset, camera-trap
    sources (labels CSV, Camtrap DP) group by event and class folders are split photo by photo, as they always were."""
    by = resolve_group_by(folder, group_by)
    groups = sample_groups(folder, folder.samples, by, sequence_gap) if by else None
    if folder.presplit:
        roles = dict(folder.parts)
        if TEST not in roles.values():
            roles = {path: (TEST if role == VAL else role) for path, role in roles.items()}
        rows = [(sample, roles[sample.path]) for sample in folder.samples]
        if VAL not in roles.values():
            rows = _carve_validation(rows, seed, groups)
    else:
        ratios = parse_ratios(ratios) if isinstance(ratios, str) else tuple(ratios)
        rows = _grouped_rows(folder.samples, groups, ratios, seed) if groups else \
            _stratified_rows(folder.samples, ratios, seed)
        if ratios[1] == 0:
            rows = _carve_validation(rows, seed, groups)
    rows.sort(key=lambda row: (ROLES.index(row[1]), row[0].label, str(row[0].path)))
    manifest = Manifest(root=folder.root, classes=folder.classes, rows=rows, groups=groups)
    if groups is not None:
        manifest.grouping = _grouping_line(manifest, folder, ratios)
    return manifest


def _grouping_line(manifest: Manifest, folder: ImageFolder, ratios) -> str:
    """How a grouped split came out: its groups, and each part's share of the photos (against the shares asked)."""
    counts = {role: len(manifest.part(role)) for role in ROLES}
    total = sum(counts.values())
    shares = ", ".join(f"{role} {counts[role]} ({counts[role] / total:.1%})" for role in ROLES)
    line = f"split grouped by {manifest.groups.by}: {manifest.groups.note}; {shares} of {total} photos"
    if folder.presplit:
        across, examples = groups_across_parts(manifest.rows, manifest.groups)
        if across:
            log.warning("%s: %d %ss have photos in two parts of the given split (%s, ...); their near-copies inflate "
                        "the test accuracy", folder.given or folder.root, across, manifest.groups.by,
                        ", ".join(examples))
        return line + " (the parts as given)"
    asked = "/".join(f"{share:.0%}".rstrip("%") for share in ratios)
    return line + f" (asked {asked}; whole groups go to one part)"


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


def split_or_manifest(folder: ImageFolder, ratios=DEFAULT_RATIOS, seed: int = 0,
                      split_file: str | Path | None = None, group_by: str | None = None,
                      sequence_gap: float = DEFAULT_SEQUENCE_GAP_S) -> Manifest:
    """The split a run works on: the manifest `split_file` when one is given, else `folder` split by `ratios`, `seed`
    and `group_by` (`split_folder`)."""
    if split_file:
        return read_manifest(split_file, folder.root)
    return split_folder(folder, ratios, seed, group_by, sequence_gap)


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
        raise ZoolensError(f"{path}: unknown split names {sorted(unknown)} (expected {', '.join(ROLES)})")
    classes = sorted({sample.label for sample, _ in rows})
    return Manifest(root=root, classes=classes, rows=rows)
