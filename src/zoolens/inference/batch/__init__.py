"""Batch prediction over a folder tree of any size (the camera-trap workflow): `predict_folder`.

The tree is walked lazily in a fixed order (`walk`) and handled in chunks: photos are decoded in worker processes
one chunk ahead of the network (`local`; or on a Ray cluster, `ray_engine`), and each chunk's results become one
Parquet part file (`results`), written under a hidden temporary name and renamed into place, so a killed run never
leaves a damaged part and the same command goes on where it stopped. A photo is the same one when its path,
size and modification time are (`walk.photo_key`); rows of photos changed or gone since, and rows the job did
not write, are removed at the end of a run (`ResultsDataset.drop_stale`): one row per photo. Memory does not grow
with the number of photos, except for `DoneSet` (9 bytes per photo already done, 10 while stale rows are
removed). Then `sorting` (`--sort-into`, only regular files inside the photo folder) and `summary`. Each row also
carries the frame's camera, its EXIF capture time (read by the engines from the photo they open for the network) and
its kind (`CAMERA_TRAP_COLUMNS`), from which `zoolens results` forms events (zoolens.inference.camera_traps).
"""

import multiprocessing  # noqa: F401  (tests stop worker pools through it)

from zoolens.inference.batch.job import BatchOptions, predict_folder
from zoolens.inference.batch.results import CAMERA_TRAP_COLUMNS, RESULTS_VERSION, ResultsDataset, results_schema
from zoolens.inference.batch.summary import BatchSummary, format_summary, summary_rows
from zoolens.inference.batch.walk import CHUNK_SIZE, walk_photos

__all__ = ["CAMERA_TRAP_COLUMNS", "CHUNK_SIZE", "RESULTS_VERSION", "BatchOptions", "BatchSummary", "ResultsDataset", "format_summary",
           "predict_folder", "results_schema", "summary_rows", "walk_photos"]
