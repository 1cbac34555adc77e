"""Files that a run killed half-way, or several processes at once, can never leave damaged: whole files
replaced atomically, the SQLite caches, one writer per output folder (`output_lock`), outputs kept apart from
the data they are made from (`check_apart`), folder names that stay where they are put (`safe_folder_name`),
and files from outside (a model folder someone sent) read within bounds (`read_limited`, `relative_inside`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import stat
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from zoolens.errors import ZoolensError, setting

try:
    import fcntl
except ImportError:  # not POSIX: the lock file alone (O_EXCL), a dead holder's taken over by its pid
    fcntl = None


def temporary_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, beside it, one per thread. The number is the
    kernel's thread id, unique among the live threads of every process (a process's main thread has its pid), so
    two threads of one process (two browser sessions of the web app) never write into each other's file."""
    return path.with_name(f".{path.name}.tmp-{threading.get_native_id()}")


def _existing_kind(path: Path) -> str | None:
    """What is at `path` now: None (nothing), "file", "folder" or "special" (a device or FIFO: /dev/stdout, /dev/full)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "special"


@contextmanager
def replaced_atomically(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write the new file to; renamed over `path` when the block ends without an error,
    removed otherwise. `durable`: its bytes reach the disk before the rename, so even a power cut cannot
    publish a file whose contents were never written. A device or FIFO (`--csv /dev/stdout`) is written to as it
    is, never renamed over (for root that put a file where /dev/full had been); a folder is refused."""
    path = Path(path)
    kind = _existing_kind(path)
    if kind == "folder":
        raise ZoolensError(f"{path}: is a folder; give the name of a file to write")
    if kind == "special":
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        yield temporary
        if durable:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        if _existing_kind(path) not in (None, "file"):
            raise ZoolensError(f"{path}: is no longer a file; nothing was written there")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


log = logging.getLogger(__name__)

SQLITE_WAIT_S = 60  # how long a process waits for another that holds a cache file


def open_cache_database(path: Path, table: str) -> sqlite3.Connection:
    """A cache file holding `table` ("name (column TYPE, ...)"). A file that is not SQLite, or holds `name` with
    other columns (another program's, another version's), is set aside as `<file>.unusable` with a warning and
    started anew; one in memory (for this run only), with a warning, where the cache folder cannot be written
    (a read-only or full disk): a cache saves time, it must never stop the work."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = _open_sqlite(path, table)
        problem = _schema_problem(db, table)
        if problem is not None:
            db.close()
            log.warning("%s: %s; set aside as %s.unusable and started anew", path, problem, path.name)
            _set_aside(path)
            db = _open_sqlite(path, table)
            problem = _schema_problem(db, table)
            if problem is not None:
                raise sqlite3.DatabaseError(problem)
        return db
    except (OSError, sqlite3.Error) as error:
        log.warning("%s: cache not written (%s); this run keeps it in memory", path, error)
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute(f"CREATE TABLE IF NOT EXISTS {table}")
        return db


def _open_sqlite(path: Path, table: str, again: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=SQLITE_WAIT_S, check_same_thread=False)
    try:
        # WAL with NORMAL sync: a crash can lose the last writes but never corrupts the file, and a
        # commit costs no fsync (one per predicted photo would dominate single-photo latency).
        for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                          f"CREATE TABLE IF NOT EXISTS {table}"):
            _execute_when_unlocked(db, statement)
    except sqlite3.DatabaseError as error:
        db.close()
        if not again or ("not a database" not in str(error) and "malformed" not in str(error)):
            raise
        log.warning("%s: not a cache file (%s); set aside as %s.unusable and started anew", path, error, path.name)
        _set_aside(path)
        return _open_sqlite(path, table, again=False)
    return db


def _schema_problem(db: sqlite3.Connection, table: str) -> str | None:
    """Why the file's `table` is not the one zoolens makes (its columns, their types and key), or None."""
    name = table.split("(", 1)[0].strip()
    model = sqlite3.connect(":memory:")
    try:
        model.execute(f"CREATE TABLE {table}")
        expected = model.execute(f"PRAGMA table_info({name})").fetchall()
    finally:
        model.close()
    found = db.execute(f"PRAGMA table_info({name})").fetchall()
    if found != expected:
        columns = ", ".join(f"{row[1]} {row[2]}".strip() for row in found)
        return f"its table {name!r} has other columns ({columns}) than a zoolens cache's"
    return None


def _set_aside(path: Path) -> None:
    """A cache file zoolens cannot use, renamed beside it (with its WAL and shared-memory files) for a person to
    look at; the previous one set aside is replaced."""
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if os.path.lexists(source):
            os.replace(source, path.with_name(f"{path.name}.unusable{suffix}"))


def write_to_cache(db: sqlite3.Connection, statement: str, rows: list) -> None:
    """Rows into a cache; a write the disk refuses (full, read-only, damaged) is a warning, never the end of a run."""
    try:
        with db:
            db.executemany(statement, rows)
    except sqlite3.Error as error:
        log.warning("cache not written (%s); the same work is done again next time", error)


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


# ---- one writer per output folder -----------------------------------------------------------------
def lock_path(out: str | Path) -> Path:
    """`.<name>.lock` beside the output folder (never inside it: the folder may not exist yet)."""
    out = Path(out)
    return out.with_name(f".{out.name}.lock")


def _holder(text: str) -> str:
    pid = text.strip().split()[0] if text.strip() else ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


@contextmanager
def output_lock(out: str | Path, option: str = "out") -> Iterator[Path]:
    """Hold `out` for this process for the block: a second zoolens writing the same folder is refused at once
    with one line (ZoolensError). The lock file holds the pid; it is removed at the end. With fcntl the lock
    is the kernel's (flock), so a killed holder's lock is free again at once; the file it left is taken over."""
    out = Path(out)
    busy = (f"{out}: another zoolens ({{holder}}) is writing this {setting(option)} folder now (lock "
            f"{lock_path(out)}); wait for it to finish, or choose another {setting(option)}")
    with _holding(out, busy, wait_s=0.0) as lock:
        yield lock


UPDATE_WAIT_S = 60.0  # a read-modify-write takes milliseconds; a holder this slow is stuck


@contextmanager
def update_lock(path: str | Path, wait_s: float = UPDATE_WAIT_S) -> Iterator[Path]:
    """Hold the file at `path` for one read-modify-write (read it, change it, replace it): every other process and
    thread asking for it waits until the block ends, so that no one's change is lost (a corrections file that two
    reviewers, or a reviewer and `zoolens data issues`, write at once). The same lock file as `output_lock`; after
    `wait_s` seconds of waiting, one line (ZoolensError)."""
    path = Path(path)
    busy = (f"{path}: another zoolens ({{holder}}) has held this file for over {wait_s:.0f} s (lock "
            f"{lock_path(path)}); try again when it is done")
    with _holding(path, busy, wait_s) as lock:
        yield lock


@contextmanager
def _holding(target: Path, busy: str, wait_s: float) -> Iterator[Path]:
    lock = lock_path(target)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_flock(lock, busy, wait_s) if fcntl is not None else _take_exclusive(lock, busy, wait_s=wait_s)
    except OSError as error:
        raise ZoolensError(f"{lock}: cannot take the lock on {target} ({error.strerror or error})") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # before the lock is released: a waiter then sees the file gone and retries
        os.close(fd)


def _pause() -> None:
    time.sleep(random.uniform(0.001, 0.01))  # apart, so waiters do not knock in step


def _take_flock(lock: Path, busy: str, wait_s: float = 0.0) -> int:
    """The lock file opened and flock'ed, waiting up to `wait_s`. Each open is a file description of its own, so
    threads of one process exclude each other as processes do."""
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock_by(fd, deadline)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 64, 0).decode("ascii", "replace"))
            os.close(fd)
            raise ZoolensError(busy.format(holder=holder)) from None
        except OSError:  # a file system without flock (some network and FUSE ones): the file alone, then
            os.close(fd)
            return _take_exclusive(lock, busy, ours_if_dead=True, wait_s=max(0.0, deadline - time.monotonic()))
        try:  # the file its last holder removed between our open and our lock is not the lock any more
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _flock_by(fd: int, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            _pause()


def _take_exclusive(lock: Path, busy: str, ours_if_dead: bool = False, wait_s: float = 0.0) -> int:
    """The lock file made with O_CREAT|O_EXCL, waiting up to `wait_s` while it exists; one naming a dead pid (or,
    after a failed flock, none: the file the flock attempt itself made) is taken over."""
    deadline, takeovers = time.monotonic() + wait_s, 0
    while True:
        try:
            return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                text = lock.read_text(encoding="ascii", errors="replace")
            except FileNotFoundError:
                continue
            pid = text.strip().split()[0] if text.strip() else ""
            if takeovers < 2 and ((pid.isdigit() and not pid_alive(int(pid))) or (ours_if_dead and not pid)):
                takeovers += 1
                lock.unlink(missing_ok=True)  # its holder died: take it over
                continue
            if time.monotonic() >= deadline:
                raise ZoolensError(busy.format(holder=_holder(text))) from None
            _pause()


# ---- files from outside (a model folder someone sent) -------------------------------------------------
def regular_file(path: Path, limit: int | None = None) -> os.stat_result:
    """Refuse, before opening it, a file from outside that is not a regular file (a FIFO would block the reader forever,
    /dev/zero never ends; a symbolic link counts as its target), or, with `limit`, one larger than that."""
    st = os.stat(path)  # FileNotFoundError (absent, or a broken link) is the caller's to explain
    if not stat.S_ISREG(st.st_mode):
        raise ZoolensError(f"{path}: not a regular file (a FIFO, device, socket or folder)")
    if limit is not None and st.st_size > limit:
        raise ZoolensError(f"{path}: too large ({st.st_size:,} bytes; at most {limit:,})")
    return st


def read_limited(path: Path, limit: int) -> bytes:
    regular_file(path, limit)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # swapped for a FIFO since: never blocks
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ZoolensError(f"{path}: not a regular file (a FIFO, device, socket or folder)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ZoolensError(f"{path}: too large (over {limit:,} bytes)")
    return data


def read_json(path: Path, limit: int = 10 * 1024 * 1024):
    """A JSON file from a model folder: a regular file, at most `limit` bytes, parsed; ZoolensError otherwise."""
    try:
        return json.loads(read_limited(path, limit).decode("utf-8"))
    except FileNotFoundError:
        raise ZoolensError(f"{path}: no such file") from None
    except RecursionError:
        raise ZoolensError(f"{path}: unreadable (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ZoolensError(f"{path}: unreadable ({str(error)[:100]})") from None


def relative_inside(relative: str) -> bool:
    """Whether a path read from a file (a split.csv row) names something inside the folder it is joined to:
    relative, and no `..` step. Checked on the text, so a hostile row never reaches the file system."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    return bool(relative) and not pure.is_absolute() and ".." not in pure.parts and not PureWindowsPath(relative).drive


def lies_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` names something inside `folder`, on the text (normalised, `..` resolved lexically): links are
    not followed. Where a link must not lead round the answer (an output kept out of the photos), give both through
    os.path.realpath, or use `check_apart`."""
    return Path(os.path.normpath(os.path.abspath(path))).is_relative_to(os.path.normpath(os.path.abspath(folder)))


def output_folder(path: str | Path) -> Path:
    """A folder to write outputs into, made if missing; a file, device or broken link there is refused in one line."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        kind = "a broken link" if not path.exists() else "a file, not a folder"
        raise ZoolensError(f"{path}: is {kind}; give a folder to write into")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- outputs apart from their data ----------------------------------------------------------------
def check_apart(data: str | Path | Iterable[str | Path], out: str | Path | None, option: str = "out",
                data_name: str = "the data folder") -> None:
    """Refuse an output that would land on or among the photos a command reads: inside a data folder (its files
    would become photos, a class, of the next run), on a photo file given itself (it would be replaced), or a
    folder holding any of them (replacing the output could reach the photos). `data` is one folder or photo
    file, or several (a command's photo arguments); `out` None (an output not asked for) is no output. Links are
    followed. Call it before any work, once per output option: `check_apart(photos, csv, "csv", "the photo folder")`."""
    if out is None:
        return
    out_real = Path(os.path.realpath(out))
    for item in [data] if isinstance(data, (str, os.PathLike)) else data:
        _check_apart_one(Path(item), Path(out), out_real, option, data_name)


def _check_apart_one(data: Path, out: Path, out_real: Path, option: str, data_name: str) -> None:
    data_real = Path(os.path.realpath(data))
    flag = setting(option)
    if data_real.is_file():
        if out_real == data_real:
            raise ZoolensError(f"{out}: {flag} is the photo {data}; zoolens never writes over the photos it reads: "
                               f"choose another {flag}")
        data_name = "the photo"
    elif out_real.is_relative_to(data_real):
        raise ZoolensError(f"{out}: {flag} is inside {data_name} {data}; zoolens never writes among the photos it "
                           f"reads: choose another {flag} outside it")
    if data_real.is_relative_to(out_real):
        raise ZoolensError(f"{data}: {data_name} is inside {flag} {out}; choose another {flag} that does not hold "
                           f"the photos")


# ---- folder names from outside --------------------------------------------------------------------
MAX_NAME_BYTES = 200  # file systems allow 255 bytes per name; room for the suffix below
_SEPARATORS = re.compile(r"[/\\]")


def safe_folder_name(name: object) -> str:
    """One folder name for a label read from a file (a model's classes): never a path. Slashes, backslashes,
    control characters (NUL included) and leading dots become "_", an empty name "_", a name the file system
    cannot take (too long, not encodable) is cut; any name so changed ends in " (<8 hex digits of the original>)"
    so that two changed names never share a folder. Ordinary names (spaces, any letters) are kept as they are."""
    text = "" if name is None else str(name)
    cleaned = _SEPARATORS.sub("_", text)
    cleaned = "".join("_" if unicodedata.category(c) == "Cc" else c for c in cleaned)
    cleaned = re.sub(r"^\.+", lambda dots: "_" * len(dots.group()), cleaned) or "_"
    cleaned = "".join(c if _encodable(c) else "_" for c in cleaned)
    if cleaned == text and len(os.fsencode(cleaned)) <= MAX_NAME_BYTES:
        return text
    while len(os.fsencode(cleaned)) > MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned} ({digest})"


def _encodable(character: str) -> bool:
    try:
        os.fsencode(character)
    except UnicodeError:
        return False
    return True
