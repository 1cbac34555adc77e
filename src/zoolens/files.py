"""Files that a run killed half-way, or several processes at once, can never leave damaged: whole files
replaced atomically, and the SQLite caches."""

from __future__ import annotations

import os
import random
import sqlite3
import time
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


SQLITE_WAIT_S = 60  # how long a process waits for another that holds a cache file


def open_cache_database(path: Path, table: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=SQLITE_WAIT_S, check_same_thread=False)
    # WAL with NORMAL sync: a crash can lose the last writes but never corrupts the file, and a
    # commit costs no fsync (one per predicted photo would dominate single-photo latency).
    for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", f"CREATE TABLE IF NOT EXISTS {table}"):
        _execute_when_unlocked(db, statement)
    return db


def _execute_when_unlocked(db: sqlite3.Connection, statement: str) -> None:
    """Run a set-up statement, waiting while another process holds the file. SQLite's own wait (the
    connection's timeout) does not cover processes that open the same new file at once (DDP ranks): both
    read it, both want to write, and SQLite answers "database is locked" at once to break the deadlock."""
    deadline = time.monotonic() + SQLITE_WAIT_S
    while True:
        try:
            db.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.1))  # apart, so the processes do not collide again in step
