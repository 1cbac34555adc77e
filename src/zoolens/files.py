"""Writing files so that nobody, not even a run killed half-way, ever sees half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, beside it, one per process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def replaced_atomically(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write the new file to; renamed over `path` when the block ends without an error,
    removed otherwise. `durable`: its bytes reach the disk before the rename, so even a power cut cannot
    publish a file whose contents were never written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        yield temporary
        if durable:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
