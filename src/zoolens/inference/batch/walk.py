"""The walk over a photo tree, in a fixed order, and what an earlier run already did (`DoneSet`)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoolens.data.images import is_image_name

CHUNK_SIZE = 256  # photos per part file; also how far decoding runs ahead of the network


@dataclass(frozen=True)
class Found:
    """A photo found by the walk; `folder` is its sub-folder relative to the root ("." for the root)."""

    path: Path
    folder: str
    problem: str | None = None  # set when it cannot even be looked at (a folder that cannot be listed)
    size: int = -1  # its size and modification time when the walk saw it (-1: could not be read), which with
    mtime_ns: int = -1  # its path make its identity: a photo replaced or edited since is answered again


# ---- the walk -------------------------------------------------------------------------------------
OUTSIDE = "a link to a file outside the photo folder (not read)"


def walk_photos(root: Path) -> Iterator[Found]:
    """Image files below `root`, depth first: each folder's files sorted by name, then its sub-folders
    sorted by name. Symlinked folders are not followed (no loops), hidden entries are skipped, a linked file
    that leads out of `root` is named with its problem and never read, and only one folder's listing is held
    at a time per level. Each photo comes with its size and modification time (one stat each)."""
    yield from _walk(root, ".", os.path.realpath(root))


def under(folder: str, name: str) -> str:
    """A name inside a sub-folder of the folder predicted, as the walk spells it (`.` is that folder itself)."""
    return name if folder == "." else f"{folder}/{name}"


def _walk(root: Path, folder: str, inside: str) -> Iterator[Found]:
    try:
        with os.scandir(root) as found:
            entries = sorted((entry for entry in found if not entry.name.startswith(".")), key=lambda e: e.name)
            listing = [(entry, entry.is_dir(follow_symlinks=False)) for entry in entries]
    except OSError as error:
        yield Found(root, folder, f"cannot list this folder ({error.strerror or type(error).__name__})")
        return
    for entry, is_folder in listing:
        if not is_folder and is_image_name(Path(entry.name)):
            yield _photo(entry, root / entry.name, folder, inside)
    for entry, is_folder in listing:
        if is_folder:
            yield from _walk(root / entry.name, under(folder, entry.name), inside)


def _photo(entry: os.DirEntry, path: Path, folder: str, inside: str) -> Found:
    try:
        if entry.is_symlink() and not is_within(os.path.realpath(path), inside):
            return Found(path, folder, OUTSIDE)
        status = entry.stat()
    except OSError:  # gone, or a broken link: decoding says why
        return Found(path, folder)
    return Found(path, folder, size=status.st_size, mtime_ns=status.st_mtime_ns)


def is_within(resolved: str, folder: str) -> bool:
    """Whether the resolved path `resolved` is the resolved `folder` or below it."""
    return resolved == folder or resolved.startswith(folder.rstrip(os.sep) + os.sep)


def as_text(value: str | os.PathLike) -> str:
    """A file name as Parquet/CSV text: bytes that are not UTF-8 are shown as \\xNN escapes."""
    return os.fspath(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def photo_key(folder_text: str, name_text: str, size: int, mtime_ns: int) -> int:
    """64-bit identity of a photo: its path relative to the root as stored in the results, its size and its
    modification time. A photo edited or replaced since it was answered has another key, and is answered again."""
    digest = hashlib.blake2b(f"{folder_text}/{name_text}\0{size}\0{mtime_ns}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def found_key(item: Found) -> int:
    return photo_key(as_text(item.folder), as_text(item.path.name), item.size, item.mtime_ns)


class DoneSet:
    """The photos earlier runs answered, as sorted 64-bit keys (`photo_key`: path, size, modification time),
    and which of them this run's walk found again (`seen`): 9 bytes per photo, the one thing that grows with
    their number (90 MB for ten million). A photo is wrongly taken as done only on a 64-bit collision (odds
    about 3 in a million for ten million photos). `rows` is how many rows the keys came from: more rows than
    keys found again means some rows are stale (`ResultsDataset.drop_stale`)."""

    def __init__(self, keys: np.ndarray, rows: int | None = None):
        keys = np.asarray(keys, dtype=np.uint64)
        self.rows = len(keys) if rows is None else rows
        self.keys = np.unique(keys)
        self.seen = np.zeros(len(self.keys), dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    def positions(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """Where each key is in `self.keys`, and whether it is there at all."""
        wanted = np.asarray(keys, dtype=np.uint64)
        if not len(self.keys):
            return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
        positions = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return positions, self.keys[positions] == wanted

    def contains(self, keys) -> np.ndarray:
        return self.positions(keys)[1]

    def find(self, keys) -> np.ndarray:
        """`contains`, remembering the keys found as seen by this run's walk."""
        positions, found = self.positions(keys)
        self.seen[positions[found]] = True
        return found

    @property
    def stale(self) -> int:
        """Rows an earlier run wrote that are not this walk's photos as they are now (edited, gone, duplicated,
        or not from this folder); known once the whole walk went through `find`."""
        return self.rows - int(self.seen.sum())


def pending_chunks(walk: Iterable[Found], done: DoneSet, size: int, limit: int | None,
                   counts: Counter) -> Iterator[list[Found]]:
    """The walk without the photos already done, in chunks of `size`, stopping after `limit` photos (the rest
    of the walk is still looked at, for what is done: its stat only). Counts "skipped" and "pending" as it
    goes, and "limited" when the limit stopped it."""
    chunk: list[Found] = []
    for group in in_groups(walk, size):
        for item, already in zip(group, done.find([found_key(item) for item in group])):
            if already:
                counts["skipped"] += 1
                continue
            if limit is not None and counts["pending"] >= limit:
                counts["limited"] = 1
                continue
            counts["pending"] += 1
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def in_groups(items: Iterable, size: int) -> Iterator[list]:
    group = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


