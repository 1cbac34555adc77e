"""`--sort-into`: each photo linked (or copied) into the folder of its answer; nothing leaves the target."""

from __future__ import annotations

import errno
import filecmp
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from zoolens.errors import ZoolensError, setting
from zoolens.files import safe_folder_name
from zoolens.inference.batch.results import ResultsDataset
from zoolens.inference.prediction import CLASS

log = logging.getLogger(__name__)

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
    outside it. Only regular files inside the photo folder, links resolved, are placed (`photo_source`); other
    rows are counted as "refused" and named in one warning."""
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ZoolensError(f"{target}: {setting('sort_into')} folder cannot be made ({error.strerror or error})"
                           ) from None
    inside = Path(os.path.realpath(target))
    destinations: dict[str, Path] = {}

    def destination_of(answer: str) -> Path:
        if answer not in destinations:
            folder = target / safe_folder_name(answer)
            for _ in ("before it is made", "after"):  # after too: a link put there in between
                if Path(os.path.realpath(folder)).parent != inside:
                    raise ZoolensError(f"{folder}: leads out of {setting('sort_into')} {target} (a link?); nothing "
                                       f"is placed outside it: remove it or choose another {setting('sort_into')}")
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
            # Checked again here, not only when the job read the parts: nothing from the results folder is taken
            # on trust, and a photo may have been replaced by a link since the walk.
            source, problem = results.photo_source(folder, path)
            if source is None or not results.row_is_trusted(path, folder, verdict, label, error):
                counts[problem or "refused"] += 1
                continue
            destination = destination_of(label if verdict == CLASS else verdict)
            for name in _candidate_names(folder, os.path.basename(path)):
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
    if counts["refused"]:
        log.warning("%s: %d rows name no photo of %s (a link out of it, not a regular file, or not a row this job "
                    "wrote); not placed", results.folder, counts["refused"], results.root)
    return counts


