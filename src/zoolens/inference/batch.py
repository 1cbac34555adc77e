"""Batch prediction over a folder tree of any size (the camera-trap workflow): `predict_folder`.

The tree is walked lazily in a fixed order and handled in chunks: photos are decoded in worker processes
one chunk ahead of the network (ONNX Runtime), and each chunk's results become one Parquet part file,
written under a hidden temporary name and renamed into place, so a killed run never leaves a damaged part
and the same command goes on where it stopped. Memory does not grow with the number of photos, except for
`DoneSet` (8 bytes per photo already done).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import filecmp
import gc
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens.data.images import is_image_name
from zoolens.data.transforms import normalised
from zoolens.errors import ZoolensError
from zoolens.files import read_json, regular_file, replaced_atomically, safe_folder_name
from zoolens.inference.model import Model
from zoolens.inference.prediction import CLASS, NONE_OF_THESE, NOT_SURE, Prediction, failed, table_columns, table_row
from zoolens.models.open_set import MODES
from zoolens.training.features import decode_pixels

CHUNK_SIZE = 256  # photos per part file; also how far decoding runs ahead of the network
NETWORK_BATCH = 32
SETTINGS_FILE = "_zoolens.json"  # pyarrow.dataset ignores files starting with "_" or "."
PART_NAME = re.compile(r"part-(\d{5,})\.parquet")
TEMP_NAME = re.compile(r"\.part-\d{5,}\.parquet\.tmp-\d+")
FORMAT = "zoolens-batch-predictions"
RESULTS_VERSION = 2  # 2: verdict, reason and nearest columns ("none of these")


@dataclass(frozen=True)
class Found:
    """A photo found by the walk; `folder` is its sub-folder relative to the root ("." for the root)."""

    path: Path
    folder: str
    problem: str | None = None  # set when it cannot even be looked at (a folder that cannot be listed)


@dataclass
class BatchSummary:
    out: Path
    predicted: int  # photos handled by this run, errors included
    skipped: int  # photos an earlier run had already done
    errors: int  # photos of this run that could not be used
    classes: list[str]
    per_folder: dict[str, Counter] = field(default_factory=dict)  # folder -> class/"not sure"/"errors" -> count
    summary_csv: Path | None = None
    sorted_into: Path | None = None
    stopped_at_limit: bool = False


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
            raise ZoolensError(f"{self.folder}: is a file; --out names a results folder (made if missing)")
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
                raise ZoolensError(f"{path}: not the settings zoolens writes; delete it or use another --out")
            changed = [key for key in settings if earlier.get(key) != settings[key]]
            if changed:
                raise ZoolensError(f"{self.folder}: holds results made with other settings ({', '.join(changed)}); "
                                   f"use another --out, or the same settings to go on")
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
                                   f"writes {column.type}); move it out of this --out folder or choose another")

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


# ---- decoding and the network ---------------------------------------------------------------------
def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no worker tracebacks


class ChunkDecoder:
    """Decodes a chunk of photos in worker processes that live for the whole run (extract_features starts a
    DataLoader per call, too costly once per chunk), so the next chunk decodes while the network runs.

    The workers write each photo's cropped 8-bit pixels straight into one of two fixed slots of shared
    memory (the chunk being decoded, the chunk the network is reading) and send back only whether it could
    be used. Nothing photo-sized is pickled or allocated per chunk: returning each chunk as float arrays
    (154 MB through pickle) cost a quarter of the throughput and 300 MB of peak memory."""

    def __init__(self, preprocessing, workers: int, chunk_size: int):
        size = preprocessing.input_size
        shape = (2, chunk_size, size, size, 3)
        self.preprocessing = preprocessing
        self.next_slot = 0
        self.pool = None
        self.froze_objects = False
        self.memory = shared_slots_memory(int(np.prod(shape))) if workers > 0 else None
        if self.memory is None:
            self.slots = np.empty(shape, np.uint8)
            return
        self.slots = np.ndarray(shape, np.uint8, buffer=self.memory.buf)
        # Forked workers share this process's pages until either side writes to them, and a full garbage
        # collection (one came after ~70 000 photos) writes to every object's header: each process then
        # holds its own copy of the ~110 MB of objects from the imports. Frozen objects are never scanned.
        self.froze_objects = gc.get_freeze_count() == 0
        gc.freeze()
        try:
            self.pool = multiprocessing.Pool(workers, initializer=_start_decoding_worker,
                                             initargs=(self.memory.name, shape, preprocessing))
        except BaseException:
            self.close()
            raise

    def submit(self, found: list[Found]) -> tuple[int, object]:
        """Start decoding the photos of `found` that have no problem of their own into the next slot."""
        slot, self.next_slot = self.next_slot, 1 - self.next_slot
        tasks = [(slot, position, item.path) for position, item in
                 enumerate(item for item in found if item.problem is None)]
        if self.pool is None:
            return slot, [decode_into(self.slots, self.preprocessing, task) for task in tasks]
        return slot, self.pool.map_async(_decode_in_worker, tasks, chunksize=8)

    def result(self, handle: tuple[int, object]) -> tuple[np.ndarray, list[str]]:
        """The slot's pixels and, for each photo submitted, "" if it was decoded or why it cannot be used."""
        slot, outcome = handle
        return self.slots[slot], outcome if isinstance(outcome, list) else outcome.get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        if self.froze_objects:
            gc.unfreeze()
        self.slots = None  # the shared memory cannot close while an array still points into it
        if self.memory is not None:
            self.memory.close()
            self.memory.unlink()


def shared_memory_room() -> int | None:
    """Free bytes where Linux keeps POSIX shared memory (/dev/shm); None where there is no such limit."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):  # no /dev/shm (macOS), no statvfs (Windows)
        return None
    return stats.f_bavail * stats.f_frsize


def shared_slots_memory(needed: int) -> shared_memory.SharedMemory | None:
    """Shared memory for the decoding workers' slots, or None (and why, in one line) when there is none to
    be had: then this process decodes, slower. Docker gives containers 64 MB of /dev/shm by default, and a
    process that writes past its end dies of SIGBUS, so the room is checked first."""
    room = shared_memory_room()
    if room is not None and room < needed:
        problem = f"{room >> 20} MB free, decoding workers need {-(-needed >> 20)} MB of shared memory"
    else:
        try:
            return shared_memory.SharedMemory(create=True, size=needed)
        except OSError as error:
            problem = f"no shared memory for the decoding workers ({error.strerror or error})"
    print(f"/dev/shm: {problem}; decoding in this process instead (slower). In a container, give it more: "
          f"docker run --shm-size=1g", file=sys.stderr)
    return None


_worker_state: dict = {}  # in a decoding process: its view of the shared slots, and the preprocessing


def _start_decoding_worker(memory_name: str, shape: tuple[int, ...], preprocessing) -> None:
    _ignore_interrupts()
    memory = shared_memory.SharedMemory(name=memory_name)
    _worker_state.update(memory=memory, slots=np.ndarray(shape, np.uint8, buffer=memory.buf),
                         preprocessing=preprocessing)


def _decode_in_worker(task: tuple[int, int, Path]) -> str:
    return decode_into(_worker_state["slots"], _worker_state["preprocessing"], task)


def decode_into(slots: np.ndarray, preprocessing, task: tuple[int, int, Path]) -> str:
    """Decode a photo into slots[slot, position]; "" if it could be, else why it cannot be used."""
    slot, position, path = task
    pixels, problem = decode_pixels(path, preprocessing)
    if pixels is None:
        return problem or "unusable"
    slots[slot, position] = pixels
    return ""


def chunk_predictions(model: Model, found: list[Found], pixels: np.ndarray, problems: list[str], top_k: int,
                      min_confidence: float, open_set: str = "on") -> list[Prediction]:
    """The predictions of one chunk, in walk order. `pixels[i]` and `problems[i]` are the i-th photo of
    `found` that has no problem of its own: its decoded 8-bit pixels, and "" or why it cannot be used."""
    usable = [position for position, problem in enumerate(problems) if not problem]
    features = np.zeros((0, sum(backbone.feature_dim for backbone in model.backbones)), np.float32)
    if usable:
        batches = (normalised(pixels[usable[i : i + NETWORK_BATCH]], model.preprocessing)
                   for i in range(0, len(usable), NETWORK_BATCH))
        features = np.concatenate([model.features_of_arrays(batch) for batch in batches])
    looked_at = [item for item in found if item.problem is None]
    sources = [str(looked_at[position].path) for position in usable]
    answers = iter(model.predict_features(sources, features, top_k, min_confidence, open_set,
                                          image_of=lambda j: Image.fromarray(pixels[usable[j]])))
    outcomes = iter(problems)
    predictions = []
    for item in found:
        problem = item.problem
        if problem is None:
            problem = next(outcomes)
            if not problem:
                predictions.append(next(answers))
                continue
        predictions.append(failed(str(item.path), problem))
    return predictions


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


def local_predictions(model: Model, chunks: Iterator[list[Found]], top_k: int, min_confidence: float, workers: int,
                      chunk_size: int = CHUNK_SIZE,
                      open_set: str = "on") -> Iterator[tuple[list[Found], list[Prediction]]]:
    """(chunk, its predictions) for each chunk; decoding of the next chunk overlaps the network's work.

    The same decoding and ONNX Runtime engine as `extract_features`, but not its feature cache: that hashes
    every file first (a second full read) and stores 5 KB per photo in SQLite, worth it for training's many
    epochs and runs, waste for photos a batch job sees once (500 MB for 100 000 camera-trap photos)."""
    decoder = ChunkDecoder(model.preprocessing, workers, chunk_size)  # before ONNX Runtime's threads exist
    try:
        waiting = None
        for chunk in chunks:
            handle = decoder.submit(chunk)  # the other slot: the waiting chunk's pixels stay until it is done
            if waiting is not None:
                yield waiting[0], chunk_predictions(model, waiting[0], *decoder.result(waiting[1]), top_k,
                                                    min_confidence, open_set)
            waiting = (chunk, handle)
        if waiting is not None:
            yield waiting[0], chunk_predictions(model, waiting[0], *decoder.result(waiting[1]), top_k, min_confidence,
                                                open_set)
    finally:
        decoder.close()


# ---- sorting into class folders -------------------------------------------------------------------
def _same_file(a: Path, b: Path, copy: bool) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=True) if copy else os.path.samefile(a, b)
    except OSError:  # e.g. a dangling symlink left from an earlier run
        return False


def _candidate_names(folder: str, name: str) -> Iterator[str]:
    """The photo's own name, then (for a name another sub-folder already used) one that says where it came
    from, then numbered ones: deterministic, so a re-run finds its earlier links instead of adding more."""
    yield name
    if folder != ".":
        yield f"{folder.replace('/', '__')}__{name}"
    stem, suffix = os.path.splitext(name)
    for n in range(2, 1_000_000):
        yield f"{stem} ({n}){suffix}"


def _place(source: Path, target: Path, copy: bool) -> None:
    if copy:
        shutil.copy2(source, target)
        return
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.symlink(os.path.abspath(source), target)  # another file system (or no hard links there)


def sort_into(results: ResultsDataset, target: Path, copy: bool = False) -> Counter:
    """Link (or copy) every usable photo of the results into TARGET/<class>/, TARGET/not sure/ or TARGET/none of
    these/; photos already placed by an earlier run are recognised and left as they are. The photos are never
    changed. Class names come from the model's zoolens.json: each becomes one folder name (`safe_folder_name`:
    never '..', '/x' or 'a/b'), and a folder that leads out of TARGET (a link) is refused: nothing is placed
    outside it."""
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ZoolensError(f"{target}: --sort-into folder cannot be made ({error.strerror or error})") from None
    inside = Path(os.path.realpath(target))
    destinations: dict[str, Path] = {}

    def destination_of(answer: str) -> Path:
        if answer not in destinations:
            folder = target / safe_folder_name(answer)
            for _ in ("before it is made", "after"):  # after too: a link put there in between
                if Path(os.path.realpath(folder)).parent != inside:
                    raise ZoolensError(f"{folder}: leads out of --sort-into {target} (a link?); nothing is placed "
                                       f"outside it: remove it or choose another --sort-into")
                try:
                    folder.mkdir(exist_ok=True)
                except OSError as error:
                    raise ZoolensError(f"{folder}: cannot be made ({error.strerror or error})") from None
            destinations[answer] = folder
        return destinations[answer]

    counts: Counter = Counter()
    for table in results.read_parts(["path", "folder", "verdict", "label", "error"]):
        for path, folder, verdict, label, error in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            if error:
                continue
            source = Path(path)
            if not source.is_file():
                counts["missing"] += 1
                continue
            destination = destination_of(label if verdict == CLASS else verdict)
            for name in _candidate_names(folder, source.name):
                candidate = destination / name
                if candidate.parent != destination or name in ("", ".", ".."):  # a name from the results file
                    raise ZoolensError(f"{results.folder}: names a photo {name!r} that is not a file name")
                if os.path.lexists(candidate):
                    if _same_file(candidate, source, copy):
                        counts["already"] += 1
                        break
                    continue
                try:
                    _place(source, candidate, copy)
                except OSError as error:
                    raise ZoolensError(f"{candidate}: cannot be written ({error.strerror or error})") from None
                counts["placed"] += 1
                break
    return counts


# ---- the per-folder summary -----------------------------------------------------------------------
def folder_counts(results: ResultsDataset) -> dict[str, Counter]:
    """folder -> counts of each class, "not sure", "none of these" and "errors", over every part (earlier runs too)."""
    per_folder: dict[str, Counter] = {}
    for table in results.read_parts(["folder", "verdict", "label", "error"]):
        for folder, verdict, label, error in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            answer = "errors" if error else (label if verdict == CLASS else verdict)
            per_folder.setdefault(folder, Counter())[answer] += 1
    return dict(sorted(per_folder.items()))


def summary_rows(per_folder: dict[str, Counter], classes: list[str]) -> tuple[list[str], list[list]]:
    answers = [*classes, NOT_SURE, NONE_OF_THESE, "errors"]
    header = ["folder", "photos", *answers]
    rows = []
    for folder, counts in [*per_folder.items(), ("(all)", sum(per_folder.values(), Counter()))]:
        rows.append([folder, sum(counts.values()), *(counts[name] for name in answers)])
    return header, rows


def write_summary_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with replaced_atomically(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def format_summary(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(f"{cell!s:<{widths[i]}}" if i == 0 else f"{cell!s:>{widths[i]}}"
                       for i, cell in enumerate(row)) for row in [header, *rows]]
    return "\n".join(lines)


def default_summary_path(out: Path) -> Path:
    return out.with_name(f"{out.name.removesuffix('.parquet')}-summary.csv")


# ---- the whole job --------------------------------------------------------------------------------
def _check_folders(root: Path, out: Path, sort_target: Path | None) -> None:
    if not root.exists():
        raise ZoolensError(f"{root}: no such folder")
    if not root.is_dir():
        raise ZoolensError(f"{root}: is a file; batch prediction with --out takes one folder of photos")
    for option, place in (("--sort-into", sort_target), ("--out", out)):
        if place is not None and place.resolve().is_relative_to(root.resolve()):
            raise ZoolensError(f"{place}: {option} must be outside the photo folder {root} (it is never written to)")
    if sort_target is not None and root.resolve().is_relative_to(sort_target.resolve()):
        raise ZoolensError(f"{sort_target}: --sort-into must not hold the photo folder {root} (a class folder "
                           f"could be the photo folder itself, and links would land among the photos)")


def predict_folder(
    model: Model | str | Path,
    root: str | Path,
    out: str | Path,
    *,
    top_k: int = 3,
    min_confidence: float = 0.0,
    open_set: str = "on",
    sort_target: str | Path | None = None,
    copy: bool = False,
    summary_csv: str | Path | None = None,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    limit: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    concurrency: int | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Predict every photo below `root` into the Parquet results folder `out`, going on from what an
    earlier run with the same `out` finished; optionally link the photos into per-class folders under
    `sort_target`; write the per-folder summary CSV (default: beside `out`, `<name>-summary.csv`)."""
    from tqdm.auto import tqdm

    model = model if isinstance(model, Model) else Model.load(model)
    root, out = Path(root).expanduser(), Path(out).expanduser()
    sort_target = Path(sort_target).expanduser() if sort_target is not None else None
    _check_folders(root, out, sort_target)
    if top_k < 1 or chunk_size < 1 or (limit is not None and limit < 0):
        raise ZoolensError("--top-k and the chunk size must be at least 1, --limit at least 0")
    if open_set not in MODES:
        raise ZoolensError(f"--open-set {open_set!r}: choose from {', '.join(MODES)}")
    settings = {
        "format": FORMAT,
        "root": str(root.resolve()),
        "classes": model.classes,
        "model_created": model.meta.get("created"),
        "top_k": top_k,
        "min_confidence": min_confidence,
        "open_set": open_set,
        "results_version": RESULTS_VERSION,
    }
    results = ResultsDataset(out, settings)
    done = results.done()
    if len(done):
        print(f"{out}: {len(done)} photos already done by an earlier run; skipping them", file=sys.stderr)
    counts: Counter = Counter()
    chunks = pending_chunks(walk_photos(root), done, chunk_size, limit, counts)
    if engine == "ray":
        from zoolens.inference.batch_ray import ray_predictions

        predictions = ray_predictions(model, chunks, top_k, min_confidence, ray_address, concurrency, open_set)
    elif engine == "local":
        workers = min(4, os.cpu_count() or 1) if workers is None else workers
        predictions = local_predictions(model, chunks, top_k, min_confidence, workers, chunk_size, open_set)
    else:
        raise ZoolensError(f"unknown engine {engine!r}: local or ray")
    errors = 0
    with contextlib.closing(predictions), tqdm(desc="predict", unit="img", file=sys.stderr, disable=not progress,
                                               dynamic_ncols=True) as bar:  # closing: workers end on Ctrl-C too
        for chunk, chunk_results in predictions:
            results.write_part(chunk, chunk_results, top_k)
            unusable = [p for p in chunk_results if p.error]
            for prediction in unusable:  # named as they come, also kept in the results' error column
                bar.write(f"  skipped {as_text(prediction.source)}: {prediction.error}", file=sys.stderr)
            errors += len(unusable)
            bar.update(len(chunk))
            bar.set_postfix(errors=errors, skipped=counts["skipped"], refresh=False)
    print(f"{out}: predicted {counts['pending']} photos ({errors} unusable), skipped {counts['skipped']} "
          f"already done", file=sys.stderr)
    if counts["limited"]:
        print(f"stopped after {limit} photos (--limit); run the same command again to go on", file=sys.stderr)
    if sort_target is not None:
        placed = sort_into(results, sort_target, copy)
        print(f"{sort_target}: {'copied' if copy else 'linked'} {placed['placed']} photos into class folders "
              f"({placed['already']} already there, {placed['missing']} no longer found)", file=sys.stderr)
    per_folder = folder_counts(results)
    summary_path = Path(summary_csv) if summary_csv else default_summary_path(out)
    write_summary_csv(summary_path, *summary_rows(per_folder, model.classes))
    return BatchSummary(out, counts["pending"], counts["skipped"], errors, model.classes, per_folder, summary_path,
                        sort_target, bool(counts["limited"]))
