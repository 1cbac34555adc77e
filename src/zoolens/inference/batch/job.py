"""The whole batch job: `predict_folder`."""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from zoolens.choices import (
    AT_LEAST_1,
    DEFAULT_OPEN_SET,
    Constraint,
    Engine,
    Interval,
    OneOf,
    OpenSetMode,
    as_members,
    check_parameters,
    plain,
)
from zoolens.errors import ZoolensError, require_extra, setting
from zoolens.files import check_apart
from zoolens.inference.batch.local import local_predictions
from zoolens.inference.batch.results import FORMAT, RESULTS_VERSION, ResultsDataset
from zoolens.inference.batch.sorting import sort_into
from zoolens.inference.batch.summary import (
    BatchSummary,
    default_summary_path,
    folder_counts,
    summary_rows,
    write_summary_csv,
)
from zoolens.inference.batch.walk import CHUNK_SIZE, as_text, pending_chunks, walk_photos
from zoolens.inference.model import Model
from zoolens.progress import progress_bar

log = logging.getLogger(__name__)


# ---- the whole job --------------------------------------------------------------------------------
def _check_folders(root: Path, outputs: dict[str, Path | None]) -> None:
    """The photo folder is a folder, and no output (results, sorted links, summary) lands on, among or around its
    photos, links followed: the same check as every command's (`files.check_apart`)."""
    if not root.exists():
        raise ZoolensError(f"{root}: no such folder")
    if not root.is_dir():
        raise ZoolensError(f"{root}: is a file; batch prediction with {setting('out')} takes one folder of photos")
    for option, place in outputs.items():
        check_apart(root, place, option, data_name="the photo folder")


@dataclass(frozen=True)
class BatchOptions:
    """How a batch run answers and where it puts things (the fields `zoolens predict ... --out` sets)."""

    top_k: int = 3
    min_confidence: float = 0.0
    open_set: OpenSetMode = DEFAULT_OPEN_SET
    sort_into: Path | None = None  # link (or copy) each photo into the folder of its answer
    copy: bool = False
    summary_csv: Path | None = None  # default: beside the results, <name>-summary.csv
    workers: int | None = None  # decoding processes of the local engine (default: up to 4)
    chunk_size: int = CHUNK_SIZE
    limit: int | None = None  # stop after this many photos (the next run goes on)
    engine: Engine = Engine.LOCAL
    ray_address: str | None = None
    concurrency: int | None = None  # Ray: model replicas
    progress: bool = True
    # Judge each frame blank / animal / person / vehicle (zoolens.inference.frame_judge): the camera-trap animal
    # detector costs about 9x the features, so only when asked.
    camera_traps: bool = False

    # What each setting may be, declared once (zoolens.choices); `validate` walks it in this order.
    PARAMETER_CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "top_k": AT_LEAST_1,
        "chunk_size": AT_LEAST_1,
        "limit": Interval(numbers.Integral, 0, None, closed="left", optional=True),
        "open_set": OneOf(OpenSetMode),
        "engine": OneOf(Engine),
    }

    def __post_init__(self):
        for name, member in as_members(self, self.PARAMETER_CONSTRAINTS).items():
            object.__setattr__(self, name, member)  # frozen: set once, as it is made

    def validate(self) -> None:
        check_parameters(self, self.PARAMETER_CONSTRAINTS)
        if self.engine == Engine.RAY:  # before the results folder is made
            require_extra("ray", "scale", f"{setting('engine')} ray")


def _local_engine(model: Model, chunks, options: BatchOptions):
    workers = min(4, os.cpu_count() or 1) if options.workers is None else options.workers
    return local_predictions(model, chunks, options.top_k, options.min_confidence, workers, options.chunk_size,
                             options.open_set)


def _ray_engine(model: Model, chunks, options: BatchOptions):
    from zoolens.inference.batch.ray_engine import ray_predictions

    return ray_predictions(model, chunks, options.top_k, options.min_confidence, options.ray_address,
                           options.concurrency, options.open_set)


# One interface: (model, chunks of photos, options) -> (chunk, its predictions, its capture times) for each chunk, in
# order. Each engine reads a frame's capture time (EXIF) from the photo as it opens it for the network.
ENGINES = {Engine.LOCAL: _local_engine, Engine.RAY: _ray_engine}


def predict_folder(model: Model | str | Path, root: str | Path, out: str | Path, options: BatchOptions | None = None,
                   **settings) -> BatchSummary:
    """Predict every photo below `root` into the Parquet results folder `out`, going on from what an
    earlier run with the same `out` finished; optionally link the photos into per-class folders under
    `sort_into`; write the per-folder summary CSV (default: beside `out`, `<name>-summary.csv`).
    `settings` are BatchOptions fields, over `options`. What it did is the returned BatchSummary (and logged)."""
    options = replace(options or BatchOptions(), **settings)
    options.validate()
    root, out = Path(root).expanduser(), Path(out).expanduser()
    sort_target = Path(options.sort_into).expanduser() if options.sort_into is not None else None
    summary_path = Path(options.summary_csv).expanduser() if options.summary_csv else default_summary_path(out)
    _check_folders(root, {"out": out, "sort_into": sort_target, "summary_csv": summary_path})
    model = model if isinstance(model, Model) else Model.load(model)
    judge = frame_judge(model, options)  # before the results folder is made: a missing detector leaves nothing
    results = ResultsDataset(out, _settings(model, root, options), root)
    done = results.done()
    if len(done):
        log.info("%s: %d photos already done by an earlier run; skipping them", out, len(done))
    counts: Counter = Counter()
    chunks = pending_chunks(walk_photos(root), done, options.chunk_size, options.limit, counts)
    predictions = ENGINES[options.engine](model, chunks, options)
    errors = 0
    with contextlib.closing(predictions), progress_bar(None, "predict", "img", enabled=options.progress) as bar:
        for chunk, chunk_results, times in predictions:  # closing: workers end on Ctrl-C too
            if judge is not None:  # here, in this process, whichever engine answered: the same kinds from each
                chunk_results = judge.judge([item.path for item in chunk], chunk_results)
            results.write_part(chunk, chunk_results, options.top_k, times)
            unusable = [p for p in chunk_results if p.error]
            for prediction in unusable:  # named as they come, also kept in the results' error column
                bar.write(f"  skipped {as_text(prediction.source)}: {prediction.error}", file=sys.stderr)
            errors += len(unusable)
            bar.update(len(chunk))
            bar.set_postfix(errors=errors, skipped=counts["skipped"], refresh=False)
    # The whole walk went through `done` (the limit too): rows of photos changed or gone can go.
    removed, _ = results.drop_stale(done)
    placed = sort_into(results, sort_target, options.copy) if sort_target is not None else Counter()
    per_folder = folder_counts(results)
    write_summary_csv(summary_path, *summary_rows(per_folder, model.classes))
    return BatchSummary(out, counts["pending"], counts["skipped"], errors, model.classes, per_folder, summary_path,
                        sort_target, bool(counts["limited"]), placed, options.copy, names=dict(model.names),
                        removed=removed)


def frame_judge(model: Model, options: BatchOptions):
    """The frame judge when the options ask for it (its detector exported on first use, or a one-line error naming
    what to install), else None."""
    if not options.camera_traps:
        return None
    from zoolens.inference.frame_judge import FrameJudge

    return FrameJudge(model)


def _settings(model: Model, root: Path, options: BatchOptions) -> dict:
    """What the results are made with: a later run into the same folder must use the same."""
    return {
        "format": FORMAT,
        "root": str(root.resolve()),
        "classes": model.classes,
        "model_created": model.meta.get("created"),
        "top_k": options.top_k,
        "min_confidence": options.min_confidence,
        "open_set": plain(options.open_set),
        "camera_traps": options.camera_traps,
        "results_version": RESULTS_VERSION,
    }
