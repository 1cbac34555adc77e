"""The results dataset: a folder of Parquet parts, each written whole or not at all, plus the settings it was made
with (`_zoolens.json`)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zoolens.data.camera_trap import CaptureTime, camera_of
from zoolens.errors import ZoolensError, setting
from zoolens.files import read_json, regular_file, replaced_atomically
from zoolens.inference.batch.walk import DoneSet, Found, as_text, is_within, photo_key, under
from zoolens.inference.prediction import CLASS, ERROR, VERDICTS, Prediction, table_columns, table_row

log = logging.getLogger(__name__)

SETTINGS_FILE = "_zoolens.json"  # pyarrow.dataset ignores files starting with "_" or "."
PART_NAME = re.compile(r"part-(\d{5,})\.parquet")
TEMP_NAME = re.compile(r"\.part-\d{5,}\.parquet\.tmp-\d+")
FORMAT = "zoolens-batch-predictions"
RESULTS_VERSION = 5  # 2: verdict, reason and nearest columns ("none of these"); 3: the classes' names beside them;
# 4: each photo's size and modification time (its identity: an edited photo is answered again); 5: each frame's
# camera, capture time and kind (camera traps: `zoolens results` forms events and writes their formats from them)
IDENTITY_COLUMNS = ("size", "mtime_ns")
# Settings added within a results version, as results written before they were recorded were made: a resumed run
# compares with these where the folder's settings lack the key (camera_traps: the frames were judged, --camera-traps).
SETTING_DEFAULTS = {"camera_traps": False}
# What a camera-trap frame carries (zoolens.data.camera_trap): its camera (its folder, overflow folders taken out),
# its capture time (EXIF, the camera's clock: a timestamp without a time zone, null where none is usable), the EXIF
# text as read, why the time is not usable; what is in it (Prediction.kind: blank / animal / person / vehicle, null
# where the frame was not judged) and how sure that is.
CAMERA_TRAP_COLUMNS = ("camera", "time", "time_read", "time_problem", "kind", "kind_confidence")
# What a row must hold for the job to use it (resume, sort, count): checked, never trusted.
CHECKED_COLUMNS = ["path", "folder", *IDENTITY_COLUMNS, "verdict", "label", "error"]



# ---- the results dataset --------------------------------------------------------------------------
def results_schema(top_k: int):
    """The one results table (`prediction.table_columns`) with each photo's sub-folder beside its path."""
    import pyarrow as pa

    names = table_columns(top_k)
    names.insert(1, "folder")
    return pa.schema([(name, pa.float32() if name.endswith("confidence") else pa.string()) for name in names])


def stored_schema(top_k: int):
    """The parts' table: `results_schema`, then each photo's size and modification time (ns) as the walk saw them
    when it was answered, then the CAMERA_TRAP_COLUMNS."""
    import pyarrow as pa

    schema = results_schema(top_k)
    for name in IDENTITY_COLUMNS:
        schema = schema.append(pa.field(name, pa.int64()))
    types = {"time": pa.timestamp("ms"), "kind_confidence": pa.float32()}  # Parquet keeps ms, not s
    for name in CAMERA_TRAP_COLUMNS:
        schema = schema.append(pa.field(name, types.get(name, pa.string())))
    return schema


@functools.lru_cache(maxsize=4096)  # the same few folders, row after row
def clean_folder(folder: object) -> bool:
    """Whether a `folder` cell is one the walk writes: "." or a relative path of plain names."""
    return isinstance(folder, str) and (folder == "." or (
        not folder.startswith("/") and all(part not in ("", ".", "..") for part in folder.split("/"))))


class ResultsDataset:
    """A folder of Parquet parts (`part-00000.parquet`, ...) that pyarrow/pandas/DuckDB read as one table,
    plus `_zoolens.json`, the settings the results were made with (a re-run must use the same)."""

    def __init__(self, folder: Path, settings: dict, root: Path | None = None, *, read_only: bool = False):
        self.folder = Path(folder)
        self.settings = settings
        self.root = Path(settings["root"]) if root is None else Path(root)  # as the user named it: rows' paths
        self.root_text = as_text(self.root)
        self.inside = os.path.realpath(self.root)
        self.classes = set(settings.get("classes") or ())
        self.earlier_parts: list[Path] = []  # the parts `done` read: the only ones that can hold stale rows
        self.schema = stored_schema(settings["top_k"])
        if read_only:  # a reader (`zoolens results`): nothing written, nothing removed; a job may be writing here
            return
        if self.folder.exists() and not self.folder.is_dir():
            raise ZoolensError(f"{self.folder}: is a file; {setting('out')} names a results folder (made if missing)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_settings(settings)
        for stale in self.folder.iterdir():  # what a killed run was writing: never visible as a part
            if TEMP_NAME.fullmatch(stale.name):
                stale.unlink(missing_ok=True)
        parts = self.parts()
        self.next_index = int(PART_NAME.fullmatch(parts[-1].name).group(1)) + 1 if parts else 0

    @classmethod
    def read(cls, folder: str | Path) -> ResultsDataset:
        """The results folder `zoolens predict MODEL DIR --out FOLDER` wrote, to read only (it may be being written):
        its settings checked (zoolens results of this version), nothing changed in it."""
        folder = Path(folder).expanduser()
        made_by = f"zoolens predict MODEL FOLDER --out {folder}"
        if not folder.is_dir():
            raise ZoolensError(f"{folder}: no such results folder (what {made_by} writes)"
                               if not folder.exists() else f"{folder}: is a file; give the results folder {made_by} "
                                                           "wrote")
        path = folder / SETTINGS_FILE
        if not path.exists():
            raise ZoolensError(f"{folder}: has no {SETTINGS_FILE}; not a results folder of {made_by}")
        settings = read_json(path, limit=1024 * 1024)
        if not isinstance(settings, dict) or settings.get("format") != FORMAT or not isinstance(
                settings.get("top_k"), int) or not isinstance(settings.get("root"), str) or settings["top_k"] < 1:
            raise ZoolensError(f"{path}: not the settings zoolens writes")
        version = settings.get("results_version")
        if version != RESULTS_VERSION:
            raise ZoolensError(f"{folder}: results made by another version of zoolens (results_version {version}, "
                               f"this one reads {RESULTS_VERSION}); run {made_by.replace(str(folder), 'NEW.parquet')} "
                               "again into a new folder")
        return cls(folder, settings, read_only=True)

    def _check_settings(self, settings: dict) -> None:
        path = self.folder / SETTINGS_FILE
        if path.exists():
            earlier = read_json(path, limit=1024 * 1024)
            if not isinstance(earlier, dict):
                raise ZoolensError(f"{path}: not the settings zoolens writes; delete it or use another "
                                   f"{setting('out')}")
            changed = [key for key in settings if earlier.get(key, SETTING_DEFAULTS.get(key)) != settings[key]]
            if changed:
                raise ZoolensError(f"{self.folder}: holds results made with other settings ({', '.join(changed)}); "
                                   f"use another {setting('out')}, or the same settings to go on")
            return
        if any(PART_NAME.fullmatch(p.name) for p in self.folder.iterdir()):
            raise ZoolensError(f"{self.folder}: has part files but no {SETTINGS_FILE}; not zoolens results")
        with replaced_atomically(path) as temporary:
            temporary.write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def parts(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if PART_NAME.fullmatch(p.name))

    def read_parts(self, columns: list[str]) -> Iterator:
        """Each part's table (only these columns), one at a time."""
        for part in self.parts():
            yield self._read_part(part, columns)

    def _read_part(self, part: Path, columns: list[str]):
        import pyarrow.parquet as pq

        try:
            self._check_part_schema(part, [self.schema.field(name) for name in columns])
            return pq.read_table(part, columns=columns)
        except (OSError, ValueError) as error:
            raise ZoolensError(f"{part}: damaged results part ({str(error).splitlines()[0][:120]}); "
                               f"delete it and run again to redo its photos") from None

    @staticmethod
    def _check_part_schema(part: Path, wanted: list) -> None:
        """A part someone else put (or left) in --out: its columns must be the ones zoolens writes, or nothing
        is read from it (a column of another type would end deep inside the code that uses it)."""
        import pyarrow.parquet as pq

        regular_file(part)
        schema = pq.read_schema(part)
        for column in wanted:
            found = schema.field(column.name) if column.name in schema.names else None
            if found is None or found.type != column.type:
                what = "has no" if found is None else f"has {found.type} in its"
                raise ZoolensError(f"{part}: not a zoolens results part ({what} {column.name!r} column, zoolens "
                                   f"writes {column.type}); move it out of this {setting('out')} folder or choose "
                                   "another")

    # ---- what is done, and what no longer is ---------------------------------------------------------
    def row_is_trusted(self, path, folder, verdict, label, error) -> bool:
        """Whether a row can be one this job wrote: its path is ROOT/folder/name as the walk spells it, with a
        plain relative folder (so it names a file inside the photo folder, links aside: `photo_source`), and
        its answer is one this model gives. A part is data to check: someone may have put it there."""
        if not (isinstance(path, str) and isinstance(folder, str)):
            return False
        name = os.path.basename(path)
        if name in ("", ".", "..") or not clean_folder(folder) or path != self._path_of(folder, name):
            return False
        if verdict not in VERDICTS or (verdict == ERROR) != bool(error):
            return False
        return label in self.classes if verdict == CLASS else label is None

    def _path_of(self, folder: str, name: str) -> str:
        """ROOT/folder/name as the walk writes it (pathlib's spelling), for a clean folder."""
        relative = under(folder, name)
        return relative if self.root_text == "." else f"{self.root_text.rstrip('/')}/{relative}"

    def row_keys(self, table) -> tuple[np.ndarray, np.ndarray]:
        """Each row's `photo_key`, and whether the row is trusted (`row_is_trusted`; an untrusted row's key is 0)."""
        columns = [table.column(name).to_pylist() for name in CHECKED_COLUMNS]
        keys = np.zeros(table.num_rows, dtype=np.uint64)
        trusted = np.zeros(table.num_rows, dtype=bool)
        for i, (path, folder, size, mtime_ns, verdict, label, error) in enumerate(zip(*columns)):
            if size is not None and mtime_ns is not None and self.row_is_trusted(path, folder, verdict, label, error):
                keys[i], trusted[i] = photo_key(folder, os.path.basename(path), size, mtime_ns), True
        return keys, trusted

    def done(self) -> DoneSet:
        """The photos the parts answered (their trusted rows), read one part at a time."""
        keys, rows = [], 0
        self.earlier_parts = self.parts()
        for part in self.earlier_parts:
            part_keys, trusted = self.row_keys(self._read_part(part, CHECKED_COLUMNS))
            keys.append(part_keys[trusted])
            rows += len(part_keys)
        return DoneSet(np.concatenate(keys) if keys else np.zeros(0, np.uint64), rows)

    def drop_stale(self, done: DoneSet) -> tuple[int, int]:
        """After a whole walk went through `done.find`: remove from the earlier parts every row that is not one
        of the walk's photos as they are now (edited or replaced since: answered again by this run; gone; a
        second row of one photo; an untrusted row), so that the folder holds one row per photo. Each part is
        rewritten whole or not at all, one at a time; a part left with no row is removed. A kill in between
        leaves rows the next run removes. Returns (rows removed, of which untrusted)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not done.stale:
            return 0, 0
        kept = np.zeros(len(done), dtype=bool)  # the first row of each photo stays
        removed = untrusted = 0
        for part in self.earlier_parts:
            keys, trusted = self.row_keys(self._read_part(part, CHECKED_COLUMNS))
            positions, found = done.positions(keys)
            keep = np.zeros(len(keys), dtype=bool)
            for i in np.flatnonzero(trusted & found):
                if done.seen[positions[i]] and not kept[positions[i]]:
                    keep[i] = kept[positions[i]] = True
            untrusted += int((~trusted).sum())
            if keep.all():
                continue
            removed += int((~keep).sum())
            if keep.any():
                table = self._read_part(part, self.schema.names)
                with replaced_atomically(part, durable=True) as temporary:
                    pq.write_table(table.filter(pa.array(keep)), str(temporary))
            else:
                part.unlink()
        if removed > untrusted:
            log.info("%s: %d earlier rows removed: their photos were changed since (answered again), are gone, or "
                     "had a second row", self.folder, removed - untrusted)
        if untrusted:
            log.warning("%s: %d rows were not this job's answers for photos inside %s (another path, or an answer "
                        "this model does not give); not used, and removed", self.folder, untrusted, self.root)
        return removed, untrusted

    def photo_source(self, folder: str, path: str) -> tuple[Path | None, str]:
        """The photo a row names, resolved (what `--sort-into` links or copies), and "", when it is a regular file
        inside the photo folder once links are resolved; else (None, "missing") for a file no longer there, or
        (None, "refused") for anything else (a link out of the folder, a FIFO, a path that is not ROOT/folder/name)."""
        name = os.path.basename(path) if isinstance(path, str) else ""
        if not clean_folder(folder) or name in ("", ".", ".."):
            return None, "refused"
        resolved = os.path.realpath(self.root / folder / name)
        if not is_within(resolved, self.inside):
            return None, "refused"
        try:
            regular = stat.S_ISREG(os.stat(resolved).st_mode)
        except OSError:
            return None, "missing"
        return (Path(resolved), "") if regular else (None, "refused")

    def write_part(self, found: list[Found], predictions: list[Prediction], top_k: int,
                   times: list[CaptureTime] | None = None) -> Path:
        """One part: the chunk's photos `found`, their predictions and capture times (None: none read)."""
        import pyarrow.parquet as pq

        table = predictions_table(found, predictions, top_k, self.schema, times)
        target = self.folder / f"part-{self.next_index:05d}.parquet"
        # durable: the rename must never publish a part whose bytes are not on disk
        with replaced_atomically(target, durable=True) as temporary:
            pq.write_table(table, str(temporary))
        self.next_index += 1
        return target


def predictions_table(found: list[Found], predictions: list[Prediction], top_k: int, schema,
                      times: list[CaptureTime] | None = None):
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in schema.names}
    for item, prediction, time in zip(found, predictions, times or [CaptureTime()] * len(found)):
        row = table_row(prediction, top_k)
        row["path"], row["folder"] = as_text(item.path), as_text(item.folder)
        row["size"], row["mtime_ns"] = item.size, item.mtime_ns
        row.update(camera_trap_cells(row["folder"], row["path"], time, prediction))
        for name in schema.names:
            columns[name].append(row[name])
    return pa.table(columns, schema=schema)


def camera_trap_cells(folder: str, path: str, time: CaptureTime, prediction: Prediction) -> dict:
    """A frame's CAMERA_TRAP_COLUMNS: its camera from its path relative to the folder predicted, its capture time
    as read, its kind as judged."""
    name = os.path.basename(path)
    return {"camera": camera_of(under(folder, name)), "time": time.time,
            "time_read": time.text, "time_problem": time.problem or None,
            "kind": prediction.kind, "kind_confidence": prediction.kind_confidence}


