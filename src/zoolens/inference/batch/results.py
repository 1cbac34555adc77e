"""The results dataset: a folder of Parquet parts, each written whole or not at all, plus the settings it was made
with (`_zoolens.json`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError, setting
from zoolens.files import read_json, regular_file, replaced_atomically
from zoolens.inference.batch.walk import DoneSet, Found, as_text, photo_key
from zoolens.inference.prediction import Prediction, table_columns, table_row

SETTINGS_FILE = "_zoolens.json"  # pyarrow.dataset ignores files starting with "_" or "."
PART_NAME = re.compile(r"part-(\d{5,})\.parquet")
TEMP_NAME = re.compile(r"\.part-\d{5,}\.parquet\.tmp-\d+")
FORMAT = "zoolens-batch-predictions"
RESULTS_VERSION = 3  # 2: verdict, reason and nearest columns ("none of these"); 3: the classes' names beside them



# ---- the results dataset --------------------------------------------------------------------------
def results_schema(top_k: int):
    """The one results table (`prediction.table_columns`) with each photo's sub-folder beside its path."""
    import pyarrow as pa

    names = table_columns(top_k)
    names.insert(1, "folder")
    return pa.schema([(name, pa.float32() if name.endswith("confidence") else pa.string()) for name in names])


class ResultsDataset:
    """A folder of Parquet parts (`part-00000.parquet`, ...) that pyarrow/pandas/DuckDB read as one table,
    plus `_zoolens.json`, the settings the results were made with (a re-run must use the same)."""

    def __init__(self, folder: Path, settings: dict):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ZoolensError(f"{self.folder}: is a file; {setting('out')} names a results folder (made if missing)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_settings(settings)
        for stale in self.folder.iterdir():  # what a killed run was writing: never visible as a part
            if TEMP_NAME.fullmatch(stale.name):
                stale.unlink(missing_ok=True)
        self.schema = results_schema(settings["top_k"])
        parts = self.parts()
        self.next_index = int(PART_NAME.fullmatch(parts[-1].name).group(1)) + 1 if parts else 0

    def _check_settings(self, settings: dict) -> None:
        path = self.folder / SETTINGS_FILE
        if path.exists():
            earlier = read_json(path, limit=1024 * 1024)
            if not isinstance(earlier, dict):
                raise ZoolensError(f"{path}: not the settings zoolens writes; delete it or use another "
                                   f"{setting('out')}")
            changed = [key for key in settings if earlier.get(key) != settings[key]]
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
        import pyarrow.parquet as pq

        wanted = [self.schema.field(name) for name in columns]
        for part in self.parts():
            try:
                self._check_part_schema(part, wanted)
                yield pq.read_table(part, columns=columns)
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

    def done(self) -> DoneSet:
        keys = []
        for table in self.read_parts(["path", "folder"]):
            paths, folders = table.column("path").to_pylist(), table.column("folder").to_pylist()
            keys.append(np.fromiter((photo_key(f, os.path.basename(p)) for p, f in zip(paths, folders)),
                                    dtype=np.uint64, count=len(paths)))
        return DoneSet(np.concatenate(keys) if keys else np.zeros(0, np.uint64))

    def write_part(self, found: list[Found], predictions: list[Prediction], top_k: int) -> Path:
        import pyarrow.parquet as pq

        table = predictions_table(found, predictions, top_k, self.schema)
        target = self.folder / f"part-{self.next_index:05d}.parquet"
        # durable: the rename must never publish a part whose bytes are not on disk
        with replaced_atomically(target, durable=True) as temporary:
            pq.write_table(table, str(temporary))
        self.next_index += 1
        return target


def predictions_table(found: list[Found], predictions: list[Prediction], top_k: int, schema):
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in schema.names}
    for item, prediction in zip(found, predictions):
        row = table_row(prediction, top_k)
        row["path"], row["folder"] = as_text(item.path), as_text(item.folder)
        for name in schema.names:
            columns[name].append(row[name])
    return pa.table(columns, schema=schema)


