"""The local engine: photos decoded in worker processes into shared memory, one chunk ahead of the network."""

from __future__ import annotations

import gc
import logging
import mmap
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zoolens.choices import DEFAULT_OPEN_SET
from zoolens.data.camera_trap import CaptureTime, capture_time
from zoolens.data.transforms import cropped_pixels, decode_for_network
from zoolens.errors import ImageError
from zoolens.inference.batch.walk import CHUNK_SIZE, Found
from zoolens.inference.model import Model
from zoolens.inference.prediction import Prediction, failed, open_input
from zoolens.models.faces import PERSON_MIN_SIDE
from zoolens.runtime.features import ignore_interrupts, may_fork_workers

log = logging.getLogger(__name__)

NETWORK_BATCH = 32


# ---- decoding and the network ---------------------------------------------------------------------
class ChunkDecoder:
    """Decodes a chunk of photos in worker processes that live for the whole run (extract_features starts a
    worker pool per call, too costly once per chunk), so the next chunk decodes while the network runs.

    The workers write each photo's cropped 8-bit pixels straight into one of two fixed slots of shared
    memory (the chunk being decoded, the chunk the network is reading) and send back only whether it could
    be used. Nothing photo-sized is pickled or allocated per chunk: returning each chunk as float arrays
    (154 MB through pickle) cost a quarter of the throughput and 300 MB of peak memory.

    The shared memory is an anonymous mapping the workers inherit by fork, not a named segment: it has no name
    in /dev/shm to be left behind when the whole process group is killed (SIGKILL runs no clean-up; a named
    segment stayed there, 77 MB each time), and it is not bound by /dev/shm's size (64 MB in a Docker
    container by default)."""

    def __init__(self, preprocessing, workers: int, chunk_size: int):
        context = fork_context() if workers > 0 else None
        if workers > 0 and not may_fork_workers():
            log.info("decoding in this process: a batch job started off the main thread starts no worker processes")
            workers = 0
        elif workers > 0 and context is None:
            log.info("decoding in this process: worker processes here cannot be forked")
            workers = 0
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
        self.slots = np.ndarray(shape, np.uint8, buffer=self.memory)
        # Forked workers share this process's pages until either side writes to them, and a full garbage
        # collection (one came after ~70 000 photos) writes to every object's header: each process then
        # holds its own copy of the ~110 MB of objects from the imports. Frozen objects are never scanned.
        self.froze_objects = gc.get_freeze_count() == 0
        gc.freeze()
        try:
            # Fork, whatever the default start method: the workers find the mapping in their own memory.
            self.pool = context.Pool(workers, initializer=_start_decoding_worker,
                                     initargs=(self.memory, shape, preprocessing))
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

    def result(self, handle: tuple[int, object]) -> tuple[np.ndarray, list[str], list[CaptureTime]]:
        """The slot's pixels and, for each photo submitted, "" if it was decoded or why it cannot be used, and its
        capture time."""
        slot, outcome = handle
        outcomes = outcome if isinstance(outcome, list) else outcome.get()
        return self.slots[slot], [problem for problem, _ in outcomes], [time for _, time in outcomes]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        if self.froze_objects:
            gc.unfreeze()
        self.slots = None  # the mapping cannot close while an array still points into it
        if self.memory is not None:
            try:
                self.memory.close()
            except BufferError:  # a view of it still held somewhere: unmapped when that goes
                pass


def fork_context():
    """multiprocessing's fork context, or None where processes cannot be forked (Windows)."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return None


def shared_slots_memory(needed: int) -> mmap.mmap | None:
    """Memory shared with the decoding workers forked after it (MAP_SHARED | MAP_ANONYMOUS: no file, no name,
    gone with the last process that maps it), or None (and why, in one line) when there is none to be had: then
    this process decodes, slower."""
    try:
        return mmap.mmap(-1, needed, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError, AttributeError) as error:
        log.warning("no shared memory for the decoding workers (%s); decoding in this process instead (slower)",
                    getattr(error, "strerror", None) or error)
        return None


_worker_state: dict = {}  # in a decoding process: its view of the shared slots, and the preprocessing


def _start_decoding_worker(memory: mmap.mmap, shape: tuple[int, ...], preprocessing) -> None:
    ignore_interrupts()
    _worker_state.update(slots=np.ndarray(shape, np.uint8, buffer=memory), preprocessing=preprocessing)


def _decode_in_worker(task: tuple[int, int, Path]) -> tuple[str, CaptureTime]:
    return decode_into(_worker_state["slots"], _worker_state["preprocessing"], task)


# The capture time of a photo that could not be opened: nothing of it was read.
NOT_READ = CaptureTime(problem="not read: the photo cannot be used")


def decode_frame(path: Path, preprocessing) -> tuple[np.ndarray | None, str, CaptureTime]:
    """The photo resized and cropped for the network as every answer makes it (`transforms.network_pixels`), 8-bit, or
    None and why it cannot be used, and its capture time (EXIF) read from the photo already opened: a camera-trap
    frame's time costs no second open of the file (tests check both give the same pixels)."""
    try:
        image = decode_for_network(path, preprocessing)
    except ImageError as error:
        return None, error.reason or "unusable", NOT_READ
    return cropped_pixels(image, preprocessing), "", capture_time(image)


def decode_into(slots: np.ndarray, preprocessing, task: tuple[int, int, Path]) -> tuple[str, CaptureTime]:
    """Decode a photo into slots[slot, position]: ("" if it could be, else why it cannot be used; its capture time)."""
    slot, position, path = task
    pixels, problem, time = decode_frame(path, preprocessing)
    if pixels is not None:
        slots[slot, position] = pixels
    return problem, time


def chunk_predictions(model: Model, found: list[Found], pixels: np.ndarray, problems: list[str], top_k: int,
                      min_confidence: float, open_set: str = DEFAULT_OPEN_SET) -> list[Prediction]:
    """The predictions of one chunk, in walk order. `pixels[i]` and `problems[i]` are the i-th photo of
    `found` that has no problem of its own: its decoded 8-bit pixels, and "" or why it cannot be used. A photo turned
    away is opened again for the person check as `Model.predict` opens it (at PERSON_MIN_SIDE, not the network's
    crop, which can leave out a person beside the centre): one photo, one answer."""
    usable = [position for position, problem in enumerate(problems) if not problem]
    features = np.zeros((0, model.feature_width), np.float32)
    if usable:
        batches = (pixels[usable[i : i + NETWORK_BATCH]] for i in range(0, len(usable), NETWORK_BATCH))
        features = np.concatenate([model.features_of_pixels(batch) for batch in batches])
    looked_at = [item for item in found if item.problem is None]
    sources = [str(looked_at[position].path) for position in usable]
    answers = iter(model.predict_features(sources, features, top_k, min_confidence, open_set,
                                          image_of=lambda j: open_input(sources[j], PERSON_MIN_SIDE)))
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


def chunk_times(found: list[Found], times: list[CaptureTime]) -> list[CaptureTime]:
    """Each photo's capture time in walk order; `times` are those of the photos of `found` that have no problem of
    their own (a photo the walk could not look at was never opened)."""
    read = iter(times)
    return [next(read) if item.problem is None else NOT_READ for item in found]


def local_predictions(model: Model, chunks: Iterator[list[Found]], top_k: int, min_confidence: float, workers: int,
                      chunk_size: int = CHUNK_SIZE, open_set: str = DEFAULT_OPEN_SET
                      ) -> Iterator[tuple[list[Found], list[Prediction], list[CaptureTime]]]:
    """(chunk, its predictions, its capture times) for each chunk; decoding of the next chunk overlaps the network's
    work.

    The same decoding and ONNX Runtime engine as `extract_features`, but not its feature cache: that hashes
    every file first (a second full read) and stores 5 KB per photo in SQLite, worth it for training's many
    epochs and runs, waste for photos a batch job sees once (500 MB for 100 000 camera-trap photos)."""
    decoder = ChunkDecoder(model.preprocessing, workers, chunk_size)  # before ONNX Runtime's threads exist
    try:
        def answered(chunk: list[Found], handle):
            pixels, problems, times = decoder.result(handle)
            return (chunk, chunk_predictions(model, chunk, pixels, problems, top_k, min_confidence, open_set),
                    chunk_times(chunk, times))

        waiting = None
        for chunk in chunks:
            handle = decoder.submit(chunk)  # the other slot: the waiting chunk's pixels stay until it is done
            if waiting is not None:
                yield answered(*waiting)
            waiting = (chunk, handle)
        if waiting is not None:
            yield answered(*waiting)
    finally:
        decoder.close()


