"""A batch job's results as camera-trap answers: `zoolens results RESULTS.parquet ...`.

`read_camera_trap_results` reads the results folder `zoolens predict MODEL DIR --out RESULTS.parquet` wrote (one part
at a time, only the columns it needs, nothing written there), turns each trusted row into a
camera_trap_formats.FrameAnswer (its camera, capture time and kind as the job recorded them) and forms the events
across every frame predicted, however the job was chunked, resumed or spread over Ray. `write_formats` writes
MegaDetector batch results, a Camtrap DP package and the per-event CSV from them; the report (and `export_results`,
which does it all) is zoolens.evaluation.camera_trap_report, as it draws figures.

What is held in memory is one FrameAnswer per frame (events are formed over all of them, and the formats list every
frame) and its event: 0.34 KB a frame, plus 0.49 KB an event (tracemalloc, 20 000 synthetic frames with three
classifications each, every frame its own event): under 1 GB for a million frames.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import timezone as Timezone
from pathlib import Path

from zoolens import __version__
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S, camera_of
from zoolens.errors import ZoolensError, setting
from zoolens.files import read_json, read_limited
from zoolens.inference.batch.results import ResultsDataset
from zoolens.inference.batch.walk import under
from zoolens.inference.camera_trap_formats import (
    CamtrapDpWritten,
    EventAnswer,
    FrameAnswer,
    event_answers,
    write_camtrap_dp,
    write_events_csv,
    write_megadetector,
)
from zoolens.inference.prediction import CLASS, ERROR, KINDS, NOT_SURE
from zoolens.spreadsheet import from_cell

log = logging.getLogger(__name__)

MAX_DEPLOYMENTS_BYTES = 10 * 1024 * 1024
MAX_PROJECT_BYTES = 1024 * 1024
ROW_COLUMNS = ["path", "folder", "verdict", "label", "error", "time", "time_read", "time_problem", "kind",
               "kind_confidence"]


@dataclass
class CameraTrapResults:
    """The frames of a results folder as camera-trap answers, and their events.

    results: the results folder; root: the folder predicted (as `_zoolens.json` records it: the frames' paths are
    relative to it); classes: the model's classes, `names` how people read them where that differs; frames: one
    FrameAnswer per photo (errors are `unreadable`); events: rolled up over all the frames (`gap_s` apart at most);
    set_aside: rows not used (not this job's, or a second row of one photo)."""

    results: Path
    root: Path
    classes: list[str]
    names: dict[str, str]
    model_created: str | None
    frames: list[FrameAnswer]
    events: list[EventAnswer]
    gap_s: float
    set_aside: int = 0
    frame_kinds: Counter = field(default_factory=Counter)
    event_kinds: Counter = field(default_factory=Counter)

    @property
    def without_time(self) -> int:
        """Frames with no usable capture time (each an event of its own; not Camtrap DP media)."""
        return sum(frame.time is None for frame in self.frames)

    @property
    def classified_by(self) -> str:
        return f"zoolens {__version__}" + (f" (model of {self.model_created})" if self.model_created else "")


def require_judged(results: Path, unjudged: int, total: int, example: str) -> None:
    """Refuse, in one line, results whose frames were never judged blank / animal / person / vehicle: the kind is
    what every camera-trap output says of a frame, and only `zoolens predict` can give it (from the photo)."""
    if unjudged:
        raise ZoolensError(
            f"{results}: {unjudged} of {total} frames were never judged blank, animal, person or vehicle (such as "
            f"{example}): run zoolens predict MODEL FOLDER --out NEW.parquet --camera-traps (the frame judge: blank, "
            "animal, person or vehicle) into a new results folder")


def frame_answer(row: dict, relative: str, classes: set[str], top_k: int) -> FrameAnswer | None:
    """One row as a FrameAnswer, or None where it was never judged (kind empty, not an error). Classifications (the
    model's classes with their probabilities, best first) only for an animal frame the model answered with one of
    its classes or was not sure between them: a frame it turned away ("none of these") is an animal it does not
    know. Raises ValueError for a row no job writes (a kind that is not one, a confidence that is not a
    probability)."""
    time = row["time"]
    common = dict(path=relative, camera=camera_of(relative), time=time, time_text=row["time_read"] or "",
                  time_problem=row["time_problem"] or "")
    if row["verdict"] == ERROR:
        return FrameAnswer(**common, kind="unreadable", error=row["error"] or "unreadable")
    kind = row["kind"]
    if kind is None:
        return None
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}")
    classifications = ()
    if kind == "animal" and row["verdict"] in (CLASS, NOT_SURE):
        classifications = tuple((label, float(probability)) for i in range(1, top_k + 1)
                                if (label := row[f"top{i}_label"]) in classes
                                and (probability := row[f"top{i}_confidence"]) is not None)
    return FrameAnswer(**common, kind=kind, kind_confidence=row["kind_confidence"], classifications=classifications)


def read_camera_trap_results(results: str | Path, sequence_gap: float = DEFAULT_SEQUENCE_GAP_S) -> CameraTrapResults:
    """The frames and events of a results folder (see the module). Rows are data to check: only a row the job could
    have written for a photo of the folder predicted is used (ResultsDataset.row_is_trusted), once per photo; the
    others are counted and named in one warning."""
    if sequence_gap is None or not sequence_gap >= 0:
        raise ZoolensError(f"{setting('sequence_gap')} {sequence_gap}: give a number of seconds, 0 or more")
    dataset = ResultsDataset.read(results)
    top_k = int(dataset.settings["top_k"])
    classes = [str(name) for name in dataset.settings.get("classes") or ()]
    known = set(classes)
    columns = ROW_COLUMNS + [f"top{i}_{what}" for i in range(1, top_k + 1) for what in ("label", "name", "confidence")]
    frames: list[FrameAnswer] = []
    seen: set[str] = set()
    names: dict[str, str] = {}
    set_aside, unjudged, example = 0, 0, ""
    checker = None  # the rows' paths begin with the folder predicted as the user named it then (maybe relative)
    for table in dataset.read_parts(columns):
        for row in table.to_pylist():
            relative = _relative(row)
            if relative is not None and checker is None and row["path"].endswith(relative):
                prefix = row["path"][: len(row["path"]) - len(relative)]
                spelled = "/" if prefix == "/" else prefix.rstrip("/") or "."
                checker = ResultsDataset(dataset.folder, dataset.settings, Path(spelled), read_only=True)
            if relative is None or relative in seen or checker is None or not checker.row_is_trusted(
                    row["path"], row["folder"], row["verdict"], row["label"], row["error"]):
                set_aside += 1
                continue
            try:
                answer = frame_answer(row, relative, known, top_k)
            except (ValueError, TypeError):
                set_aside += 1
                continue
            seen.add(relative)
            if answer is None:
                unjudged, example = unjudged + 1, example or relative
                continue
            frames.append(answer)
            for i in range(1, top_k + 1):
                label, name = row[f"top{i}_label"], row[f"top{i}_name"]
                if label in known and isinstance(name, str) and name and name != label:
                    names.setdefault(label, name)
    require_judged(dataset.folder, unjudged, unjudged + len(frames), example)
    if set_aside:
        log.warning("%s: %d rows set aside: not this job's answers for photos of %s, or a second row of one photo",
                    dataset.folder, set_aside, dataset.root)
    if not frames:
        raise ZoolensError(f"{dataset.folder}: no frames in these results yet (run zoolens predict to the end)")
    events = event_answers(frames, sequence_gap)
    return CameraTrapResults(dataset.folder, dataset.root, classes, names, dataset.settings.get("model_created"),
                             frames, events, float(sequence_gap), set_aside,
                             Counter(frame.kind for frame in frames), Counter(event.kind for event in events))


def _relative(row: dict) -> str | None:
    """The photo's path relative to the folder predicted, as the job wrote it (folder/name, posix)."""
    folder, path = row["folder"], row["path"]
    if not isinstance(folder, str) or not isinstance(path, str):
        return None
    return under(folder, path.rsplit("/", 1)[-1])


# ---- the user's facts -----------------------------------------------------------------------------
def read_deployments(path: str | Path) -> list[dict[str, str]]:
    """The rows of a deployments.csv (Camtrap DP's deployment columns; deploymentID the camera folder's name), read
    bounded; a one-line error naming the file otherwise."""
    path = Path(path).expanduser()
    try:
        text = read_limited(path, MAX_DEPLOYMENTS_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        raise ZoolensError(f"{path}: no such file (the deployments: deploymentID, latitude, longitude, ...)") from None
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not UTF-8 text; save the deployments as a UTF-8 CSV") from None
    except OSError as error:
        raise ZoolensError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [str(name).strip() for name in reader.fieldnames or ()]
        if "deploymentID" not in header:
            raise ZoolensError(f"{path}: no deploymentID column (Camtrap DP's deployment columns: deploymentID, "
                               "latitude, longitude, ...; deploymentID is the camera folder's name)")
        reader.fieldnames = header
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise ZoolensError(f"{path}: line {number} has more cells than the header has columns")
            rows.append({key: from_cell((value or "").strip()) for key, value in row.items()})
    except csv.Error as error:
        raise ZoolensError(f"{path}: not a CSV file ({error})") from None
    if not rows:
        raise ZoolensError(f"{path}: no deployments (one row per camera folder)")
    return rows


def read_project(path: str | Path) -> dict:
    """The package-level facts only the user knows (Camtrap DP's `project`, `contributors`, ...), a JSON object."""
    path = Path(path).expanduser()
    facts = read_json(path, limit=MAX_PROJECT_BYTES)
    if not isinstance(facts, dict):
        raise ZoolensError(f"{path}: not a JSON object such as {{\"project\": {{\"title\": ...}}, \"contributors\": "
                           "[...]}}")
    return facts


# ---- outputs ----------------------------------------------------------------------------------------
def check_outputs(results: str | Path, root: str | Path, outputs: dict[str, str | Path | None],
                  inputs: dict[str, str | Path | None] | None = None) -> None:
    """Every output (option -> path, None when not asked for) refused, in one line and before any work, when it would
    land on or among the photos of the folder predicted (files.check_apart, links followed), on or inside the results
    folder, on one of the inputs, or on another output."""
    from zoolens.files import check_apart

    results_real = Path(os.path.realpath(results))
    taken: dict[Path, str] = {Path(os.path.realpath(path)): option for option, path in (inputs or {}).items() if path}
    for option, path in outputs.items():
        if path is None:
            continue
        check_apart(root, path, option, data_name="the photo folder")
        real = Path(os.path.realpath(path))
        if real.is_relative_to(results_real):
            raise ZoolensError(f"{path}: {setting(option)} is inside the results folder {results}; choose another "
                               f"{setting(option)} outside it")
        if real in taken:
            raise ZoolensError(f"{path}: {setting(option)} is also {setting(taken[real])}; give each its own file")
        taken[real] = option


@dataclass
class FormatsWritten:
    """What write_formats wrote (None: not asked for)."""

    megadetector: Path | None = None
    camtrap_dp: CamtrapDpWritten | None = None
    events: Path | None = None


def write_formats(found: CameraTrapResults, *, megadetector: str | Path | None = None,
                  camtrap_dp: str | Path | None = None, events: str | Path | None = None,
                  deployments: list[dict] | None = None, deployments_file: str | Path | None = None,
                  project: dict | None = None, project_file: str | Path | None = None,
                  timezone: Timezone | None = None) -> FormatsWritten:
    """The camera-trap formats asked for, from `found`: MegaDetector batch results 1.6 (paths relative to the folder
    predicted), a Camtrap DP 1.0.2 package (with the user's deployments rows and project facts; frames without a
    time left out; `timezone` None: UTC, said), the per-event CSV. Camtrap DP is checked first (it may refuse what
    only the user knows), so a refusal leaves nothing written."""
    written = FormatsWritten()
    if camtrap_dp is not None:
        if deployments is None:
            raise ZoolensError(f"{setting('camtrap_dp')} needs {setting('deployments')} FILE.csv: each camera's "
                               "latitude and longitude, which only you know (columns deploymentID, latitude, "
                               f"longitude; deploymentID the camera folder's name, such as "
                               f"{_first_camera(found)!r})")
        if project is None:
            raise ZoolensError(f"{setting('camtrap_dp')} needs {setting('project')} FILE.json: the project's title, "
                               'samplingDesign, captureMethod and contributors, such as {"project": {"title": "...", '
                               '"samplingDesign": "opportunistic", "captureMethod": ["activityDetection"]}, '
                               '"contributors": [{"title": "Your Name", "role": "contact"}]}')
        try:
            written.camtrap_dp = write_camtrap_dp(found.frames, found.events, found.classes, None, camtrap_dp,
                                                  deployments=deployments, project=project, timezone=timezone,
                                                  classified_by=found.classified_by)
        except ZoolensError as error:
            raise ZoolensError(_naming_the_file(str(error), deployments_file, project_file)) from None
    if megadetector is not None:
        written.megadetector = write_megadetector(found.frames, found.classes, found.names, megadetector,
                                                  classifier=found.classified_by)
    if events is not None:
        written.events = write_events_csv(found.events, events)
    return written


def _first_camera(found: CameraTrapResults) -> str:
    return next((frame.camera for frame in found.frames if frame.camera), "")


def _naming_the_file(message: str, deployments_file, project_file) -> str:
    """write_camtrap_dp says `deployments: ...` and `project: ...`: the file the user gave, named instead."""
    for prefix, path in (("deployments: ", deployments_file), ("project: ", project_file)):
        if path is not None and message.startswith(prefix):
            return f"{path}: {message[len(prefix):]}"
    return message
