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


# ---- the walk -------------------------------------------------------------------------------------
def walk_photos(root: Path, folder: str = ".") -> Iterator[Found]:
    """Image files below `root`, depth first: each folder's files sorted by name, then its sub-folders
    sorted by name. Symlinked folders are not followed (no loops), hidden entries are skipped, and only
    one folder's listing is held at a time per level."""
    try:
        with os.scandir(root) as entries:
            listing = sorted((entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries
                             if not entry.name.startswith("."))
    except OSError as error:
        yield Found(root, folder, f"cannot list this folder ({error.strerror or type(error).__name__})")
        return
    for name, is_folder in listing:
        if not is_folder and is_image_name(Path(name)):
            yield Found(root / name, folder)
    for name, is_folder in listing:
        if is_folder:
            yield from walk_photos(root / name, name if folder == "." else f"{folder}/{name}")


def as_text(value: str | os.PathLike) -> str:
    """A file name as Parquet/CSV text: bytes that are not UTF-8 are shown as \\xNN escapes."""
    return os.fspath(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def photo_key(folder_text: str, name_text: str) -> int:
    """64-bit identity of a photo, from its path relative to the root as stored in the results."""
    digest = hashlib.blake2b(f"{folder_text}/{name_text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class DoneSet:
    """The photos earlier runs finished, as sorted 64-bit hashes of their relative paths: the one thing
    that grows with the number of photos, 8 bytes each (80 MB for ten million). A photo is wrongly taken
    as done only on a 64-bit hash collision (odds about 3 in a million for ten million photos)."""

    def __init__(self, keys: np.ndarray):
        self.keys = np.unique(np.asarray(keys, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.keys)

    def contains(self, keys: list[int]) -> np.ndarray:
        wanted = np.asarray(keys, dtype=np.uint64)
        if not len(self.keys):
            return np.zeros(len(wanted), dtype=bool)
        positions = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return self.keys[positions] == wanted


def pending_chunks(walk: Iterable[Found], done: DoneSet, size: int, limit: int | None,
                   counts: Counter) -> Iterator[list[Found]]:
    """The walk without the photos already done, in chunks of `size`, stopping after `limit` photos.
    Counts "skipped" and "pending" as it goes, and "limited" when the limit stopped it."""
    chunk: list[Found] = []
    for group in in_groups(walk, size):
        keys = [photo_key(as_text(item.folder), as_text(item.path.name)) for item in group]
        for item, already in zip(group, done.contains(keys)):
            if already:
                counts["skipped"] += 1
                continue
            if limit is not None and counts["pending"] >= limit:
                counts["limited"] = 1
                break
            counts["pending"] += 1
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if counts["limited"]:
            break
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


