"""Camera-trap answers in the formats the camera-trap world reads: MegaDetector batch results (Timelapse, AddaxAI),
a Camtrap DP 1.0.2 data package (camtraptor, camtrapR, GBIF) and a per-event CSV.

The input is one `FrameAnswer` per frame predicted: where it is, its camera and time (zoolens.data.camera_trap), its
kind (blank / animal / person / vehicle / unreadable, decided elsewhere) and, for animal frames, the model's classes
with their probabilities. Events are formed from them (`event_answers`: data.camera_trap.form_events, then
`roll_up`), and each writer takes what it needs.

What only the user knows (coordinates, deployment dates, time zone, project facts) is never invented: Camtrap DP takes
it from the user's deployments rows and project facts, derives what can be derived (a deployment's start and end from
its frames' times, the package's temporal and spatial coverage), and refuses in one line naming what is missing.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import mimetypes
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as Timezone
from pathlib import Path, PurePosixPath

from zoolens import __version__
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S, Event, Frame, form_events, event_id
from zoolens.errors import ZoolensError
from zoolens.files import replaced_atomically
from zoolens.spreadsheet import to_cell

log = logging.getLogger(__name__)

KINDS = ("blank", "animal", "person", "vehicle", "unreadable")
DETECTION_KINDS = ("animal", "person", "vehicle")
EVENT_KINDS = ("animal", "person", "vehicle", "blank", "unknown", "unreadable")

# A frame is confidently an animal when its judge says so with even odds or better. MegaDetector's sequence smoothing
# ignores classifications below 0.5 (ClassificationSmoothingOptions.classification_confidence_threshold); our
# kind_confidence is a probability, so 0.5 is where "animal" becomes the likelier answer. An animal frame below it
# still makes its event an animal when no person or vehicle is in the event (see roll_up): a missed animal costs an
# ecologist more than an empty frame looked at.
ANIMAL_THRESHOLD = 0.5

# --- MegaDetector batch results (https://lila.science/megadetector-output-format) ---------------------------------
MEGADETECTOR_FORMAT_VERSION = "1.6"  # a string: the 1.6 validator refuses a number
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
_DETECTION_CATEGORY = {name: key for key, name in DETECTION_CATEGORIES.items()}
WHOLE_FRAME = [0.0, 0.0, 1.0, 1.0]  # [x_min, y_min, width, height], relative: the frame is judged whole, not located

# --- Camtrap DP 1.0.2 (https://camtrap-dp.tdwg.org) -----------------------------------------------------------------
CAMTRAP_DP_VERSION = "1.0.2"
_CAMTRAP_DP_BASE = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{CAMTRAP_DP_VERSION}"
CAMTRAP_DP_PROFILE = f"{_CAMTRAP_DP_BASE}/camtrap-dp-profile.json"
CAMTRAP_DP_TABLES = ("deployments", "media", "observations")
# The columns of each table in the order of its table schema (frictionless checks names and order); the columns that
# are not text (numbers, booleans, date-times) are written as they are, the text ones through the spreadsheet rule.
DEPLOYMENT_COLUMNS = (
    "deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty", "deploymentStart",
    "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay", "cameraHeight", "cameraDepth", "cameraTilt",
    "cameraHeading", "detectionDistance", "timestampIssues", "baitUse", "featureType", "habitat", "deploymentGroups",
    "deploymentTags", "deploymentComments")
MEDIA_COLUMNS = (
    "mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName", "fileMediatype",
    "exifData", "favorite", "mediaComments")
OBSERVATION_COLUMNS = (
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
    "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior", "individualID",
    "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth",
    "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp", "classificationProbability",
    "observationTags", "observationComments")
_NOT_TEXT = {
    "latitude", "longitude", "coordinateUncertainty", "deploymentStart", "deploymentEnd", "cameraDelay", "cameraHeight",
    "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance", "timestampIssues", "baitUse", "timestamp",
    "filePublic", "exifData", "favorite", "eventStart", "eventEnd", "count", "individualPositionRadius",
    "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth", "bboxHeight",
    "classificationTimestamp", "classificationProbability"}
OBSERVATION_TYPE = {"animal": "animal", "person": "human", "vehicle": "vehicle", "blank": "blank",
                    "unknown": "unknown", "unreadable": "unclassified"}
PROJECT_REQUIRED = ("title", "samplingDesign", "captureMethod")  # the rest of `project` zoolens knows (see below)
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic")
CAPTURE_METHODS = ("activityDetection", "timeLapse")
# Camtrap DP's filePath: no leading ".", "/" or "~" and no "..": a path inside the package's folder or a URL
_FILE_PATH = re.compile(r"^(?=^[^./~])(^((?!\.{2}).)*$).*$")
_ASSUMED_ZONE = Timezone.utc

EVENT_CSV_COLUMNS = ("eventID", "camera", "start", "end", "frames", "kind", "kind_confidence", "species",
                     "species_confidence") + KINDS


@dataclass(frozen=True)
class FrameAnswer:
    """What zoolens says of one frame.

    path: posix, relative to the folder predicted; camera: data.camera_trap.camera_of(path); time: the capture time
    (naive: the camera's clock) or None, with the EXIF text read and the problem in words where it is not usable;
    kind: one of KINDS; kind_confidence: the probability of that kind (required for animal / person / vehicle, which
    become detections); classifications: (class, probability) of the model's classes, best first, for animal frames
    (empty where the model named none of its classes); error: why an unreadable frame could not be read."""

    path: str
    camera: str
    time: datetime | None
    time_text: str = ""
    time_problem: str = ""
    kind: str = "blank"
    kind_confidence: float | None = None
    classifications: tuple[tuple[str, float], ...] = ()
    error: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.path}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if "\\" in self.path or self.path.startswith("/"):
            raise ValueError(f"{self.path}: give the path relative to the folder predicted, with forward slashes")
        confidence = self.kind_confidence
        if confidence is not None and not (isinstance(confidence, (int, float)) and 0.0 <= confidence <= 1.0):
            raise ValueError(f"{self.path}: kind_confidence {confidence!r} is not a probability")
        if self.kind in DETECTION_KINDS and confidence is None:
            raise ValueError(f"{self.path}: an {self.kind} frame needs its kind_confidence")
        if self.classifications and self.kind != "animal":
            raise ValueError(f"{self.path}: classifications are for animal frames, not {self.kind} ones")


def frames_of(answers: Iterable[FrameAnswer]) -> list[Frame]:
    """The data.camera_trap.Frame of each answer, for form_events."""
    return [Frame(answer.path, answer.camera, answer.time) for answer in answers]


@dataclass(frozen=True)
class EventAnswer:
    """An event (data.camera_trap.Event) with its rolled-up answer (see roll_up): kind one of EVENT_KINDS, species ""
    where none, counts of its frames of each of KINDS."""

    event_id: str
    camera: str
    start: datetime | None
    end: datetime | None
    frames: tuple[str, ...]
    kind: str
    kind_confidence: float | None
    species: str = ""
    species_confidence: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)


def roll_up(event: Event, frames_by_path: Mapping[str, FrameAnswer],
            animal_threshold: float = ANIMAL_THRESHOLD) -> EventAnswer:
    """An event's answer from its frames' answers. References: MegaDetector's sequence smoothing
    (postprocessing/classification_postprocessing.py: a sequence that looks like deer/deer/elk/deer is a deer) and
    SpeciesNet's ensemble (a confident animal detection makes the answer an animal, whatever else is said).

    Kind, the first rule that holds:
    1. animal, if a frame is an animal with kind_confidence >= animal_threshold (ANIMAL_THRESHOLD);
    2. person, if a frame is a person;
    3. vehicle, if a frame is a vehicle;
    4. animal, if a frame is an animal below the threshold (nothing else was seen: the animal is not thrown away);
    5. blank, only when ALL its frames are blank;
    6. unreadable, when all its frames are unreadable; otherwise (blank and unreadable frames) unknown: an unreadable
       frame may have held anything.
    kind_confidence: the highest kind_confidence among the frames of the deciding kind (of the confident animal frames
    under rule 1); for blank the lowest of its frames' (every frame must be empty, so the least sure one counts);
    None for unknown and unreadable, or where the frames carry none.

    Species (animal events only): over the event's animal frames that carry classifications, each class's mean
    probability (a class a frame does not list counts 0 for it); the species is the class with the highest mean, and
    a tie goes to the class whose name sorts first, so the answer never depends on the order of the frames. Its
    confidence is that mean. An animal event whose frames name no class has no species.
    """
    try:
        answers = [frames_by_path[path] for path in event.frames]
    except KeyError as missing:
        raise ZoolensError(f"event {event.event_id}: frame {missing.args[0]} has no answer") from None
    counts = Counter(answer.kind for answer in answers)
    by_kind = defaultdict(list)
    for answer in answers:
        by_kind[answer.kind].append(answer)
    confident = [a for a in by_kind["animal"] if a.kind_confidence >= animal_threshold]
    if confident:
        kind, deciding = "animal", confident
    elif by_kind["person"]:
        kind, deciding = "person", by_kind["person"]
    elif by_kind["vehicle"]:
        kind, deciding = "vehicle", by_kind["vehicle"]
    elif by_kind["animal"]:
        kind, deciding = "animal", by_kind["animal"]
    elif answers and counts["blank"] == len(answers):
        kind, deciding = "blank", by_kind["blank"]
    else:
        kind, deciding = ("unreadable" if answers and counts["unreadable"] == len(answers) else "unknown"), []
    known = [a.kind_confidence for a in deciding if a.kind_confidence is not None]
    kind_confidence = (min(known) if kind == "blank" else max(known)) if known else None
    species, species_confidence = _species(by_kind["animal"]) if kind == "animal" else ("", None)
    return EventAnswer(event.event_id, event.camera, event.start, event.end, tuple(event.frames), kind,
                       kind_confidence, species, species_confidence, {name: counts[name] for name in KINDS})


def _species(animal_frames: list[FrameAnswer]) -> tuple[str, float | None]:
    voters = [answer.classifications for answer in animal_frames if answer.classifications]
    if not voters:
        return "", None
    probabilities = defaultdict(list)
    for classifications in voters:
        for name, probability in classifications:
            probabilities[name].append(float(probability))
    # fsum: the exact sum, the same in any order, so equal means compare equal and the tie rule decides
    means = {name: math.fsum(values) / len(voters) for name, values in probabilities.items()}
    best = min(means, key=lambda name: (-means[name], name))
    return best, means[best]


def event_answers(answers: Sequence[FrameAnswer], gap_s: float = DEFAULT_SEQUENCE_GAP_S,
                  animal_threshold: float = ANIMAL_THRESHOLD) -> list[EventAnswer]:
    """The events of all the frames (data.camera_trap.form_events), each rolled up (roll_up)."""
    by_path = _by_path(answers)
    return [roll_up(event, by_path, animal_threshold) for event in form_events(frames_of(answers), gap_s)]


def _by_path(answers: Iterable[FrameAnswer]) -> dict[str, FrameAnswer]:
    by_path = {}
    for answer in answers:
        if answer.path in by_path:
            raise ZoolensError(f"{answer.path}: answered twice; give each frame once")
        by_path[answer.path] = answer
    return by_path


# --- MegaDetector ---------------------------------------------------------------------------------------------------

def megadetector_results(answers: Sequence[FrameAnswer], classes: Sequence[str],
                         class_names: Mapping[str, str] | None = None, *, detector: str | None = None,
                         classifier: str | None = None, completed: datetime | None = None) -> dict:
    """MegaDetector batch results (format 1.6) as a dict: see write_megadetector."""
    class_id = {name: str(index) for index, name in enumerate(classes)}
    names = class_names or {}
    when = (completed or datetime.now()).strftime("%Y-%m-%d %H:%M:%S")
    images = [_megadetector_image(answer, class_id) for answer in sorted(_by_path(answers).values(),
                                                                         key=lambda a: a.path)]
    return {
        "info": {
            "format_version": MEGADETECTOR_FORMAT_VERSION,
            "detector": detector or f"zoolens {__version__} (whole frame)",
            "detection_completion_time": when,
            "classifier": classifier or f"zoolens {__version__}",
            "classification_completion_time": when,
            # Timelapse takes its default threshold from here: where zoolens' own kind confidences mean "confident"
            "detector_metadata": {"typical_detection_threshold": ANIMAL_THRESHOLD},
        },
        "detection_categories": dict(DETECTION_CATEGORIES),
        "classification_categories": {class_id[name]: str(names.get(name) or name) for name in classes},
        "images": images,
    }


def _megadetector_image(answer: FrameAnswer, class_id: Mapping[str, str]) -> dict:
    if answer.kind == "unreadable":
        return {"file": answer.path, "failure": answer.error or "unreadable", "detections": None}
    if answer.kind == "blank":
        return {"file": answer.path, "detections": []}
    detection = {"category": _DETECTION_CATEGORY[answer.kind], "conf": round(float(answer.kind_confidence), 4),
                 "bbox": list(WHOLE_FRAME)}
    if answer.classifications:
        unknown = [name for name, _ in answer.classifications if name not in class_id]
        if unknown:
            raise ZoolensError(f"{answer.path}: class {unknown[0]!r} is not one of the model's classes")
        detection["classifications"] = [[class_id[name], round(float(p), 4)] for name, p in answer.classifications]
    return {"file": answer.path, "detections": [detection]}


def write_megadetector(answers: Sequence[FrameAnswer], classes: Sequence[str],
                       class_names: Mapping[str, str] | None, path: str | Path, *, detector: str | None = None,
                       classifier: str | None = None) -> Path:
    """MegaDetector batch results, format 1.6 (https://lila.science/megadetector-output-format), written atomically:
    detection_categories 1 animal, 2 person, 3 vehicle; classification_categories the model's `classes` ("0".."n-1",
    shown by their `class_names` where given); each file relative to the folder predicted. An animal, person or
    vehicle frame has one detection of the whole frame (bbox [0, 0, 1, 1]) with its kind_confidence as conf, an animal
    one its classifications [[class_id, probability], ...] best first; a blank frame `detections: []`; an unreadable
    one `failure` (why) and `detections: null`."""
    results = megadetector_results(answers, classes, class_names, detector=detector, classifier=classifier)
    path = Path(path)
    with replaced_atomically(path) as temporary:
        temporary.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


# --- Camtrap DP -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CamtrapDpWritten:
    """What write_camtrap_dp wrote: the package's folder, its counts, the frames left out (no usable time) and
    whether the time zone was assumed (`timezone`)."""

    folder: Path
    deployments: int
    media: int
    observations: int
    left_out: tuple[str, ...]
    timezone: Timezone
    timezone_assumed: bool


def write_camtrap_dp(answers: Sequence[FrameAnswer], events: Sequence[EventAnswer], classes: Sequence[str],
                     scientific_names: Mapping[str, str] | None, folder: str | Path, *,
                     deployments: Sequence[Mapping[str, str]] | None = None, project: Mapping | None = None,
                     timezone: Timezone | None = None, classified_by: str | None = None,
                     created: datetime | None = None) -> CamtrapDpWritten:
    """A Camtrap DP 1.0.2 package in `folder`: datapackage.json, deployments.csv, media.csv, observations.csv.

    - deployments: the rows of the user's deployments.csv (Camtrap DP's deployment columns; deploymentID = the camera
      folder's name; frames at the top of the folder predicted belong to the one row where there is exactly one).
      Each camera needs its latitude and longitude; deploymentStart / deploymentEnd are derived from its frames' first
      and last times where not given.
    - project: the package-level facts only the user knows, merged into datapackage.json: `project` (title,
      samplingDesign, captureMethod required; individualAnimals defaults to false, as zoolens identifies no
      individuals, and observationLevel to ["media", "event"]), `contributors` (required), title, licenses, ...
    - timezone: the cameras' clocks' offset; None assumes UTC, said in a warning and in the package's description.
    - media: one per frame with a usable time, filePath relative to the folder predicted (the package is complete
      where it sits at that folder's root or the media are copied beside it); frames without a usable time cannot be
      Camtrap DP media: they are left out, counted in a warning and returned.
    - observations: a media-level observation for every medium (blank ones included; unreadable ones unclassified)
      with its event's eventID, and an event-level one for each event: observationType from the kind (person ->
      human), scientificName from `scientific_names` or the class name, classificationMethod machine, classifiedBy,
      classificationProbability (the species' where one is named, else the kind's).
    A value the format requires that nobody gave is refused in one line naming it, before anything is written.
    """
    zone, assumed = (timezone, False) if timezone is not None else (_ASSUMED_ZONE, True)
    by_path = _by_path(answers)
    timed = [answer for answer in by_path.values() if answer.time is not None]
    left_out = tuple(sorted(answer.path for answer in by_path.values() if answer.time is None))
    if not timed:
        raise ZoolensError(f"none of the {len(by_path)} frames has a usable capture time (EXIF DateTimeOriginal): "
                           "a Camtrap DP package needs a timestamp for every medium")
    known = set(classes)
    for answer in timed:
        if not _FILE_PATH.match(answer.path):
            raise ZoolensError(f"{answer.path}: Camtrap DP's filePath cannot start with '.', '/' or '~' or hold '..'")
        unknown = [name for name, _ in answer.classifications if name not in known]
        if unknown:
            raise ZoolensError(f"{answer.path}: class {unknown[0]!r} is not one of the model's classes")
    facts = dict(project or {})
    rows = _deployment_rows(timed, deployments, zone)
    deployment_of = {camera: row["deploymentID"] for camera, row in rows.items()}
    package_project = _project(facts)
    classified_by = classified_by or f"zoolens {__version__}"
    created = (created or datetime.now(Timezone.utc)).astimezone(Timezone.utc)
    classified_at = _stamp(created)

    capture_methods = package_project["captureMethod"]
    media = [_media_row(answer, deployment_of[answer.camera], zone, capture_methods) for answer in
             sorted(timed, key=lambda a: (a.camera, a.time, a.path))]
    event_of = {path: event for event in events for path in event.frames}
    observations = []
    for answer in sorted(timed, key=lambda a: (a.camera, a.time, a.path)):
        event = event_of.get(answer.path)
        if event is None:
            raise ZoolensError(f"{answer.path}: in no event; give the events of all the frames (event_answers)")
        observations.append(_media_observation(answer, event, deployment_of[answer.camera], zone, scientific_names,
                                               classified_by, classified_at))
    for event in sorted((e for e in events if e.start is not None), key=lambda e: (e.camera, e.start)):
        if event.camera not in deployment_of:
            raise ZoolensError(f"event {event.event_id}: camera {event.camera!r} has no frame among those given")
        observations.append(_event_observation(event, deployment_of[event.camera], zone, scientific_names,
                                               classified_by, classified_at))

    descriptor = _descriptor(facts, package_project, rows.values(), observations, zone, assumed, classified_by,
                             created)
    if left_out:
        log.warning("%d frame(s) without a usable capture time left out of the Camtrap DP package (its media need a "
                    "timestamp), such as %s (%s)", len(left_out), left_out[0], by_path[left_out[0]].time_problem
                    or "no EXIF time")
    if assumed:
        log.warning("Camtrap DP: the cameras' time zone was not given; times are written as UTC (give the offset, "
                    "such as +02:00, to correct them)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(folder / "deployments.csv", DEPLOYMENT_COLUMNS, rows.values())
    _write_csv(folder / "media.csv", MEDIA_COLUMNS, media)
    _write_csv(folder / "observations.csv", OBSERVATION_COLUMNS, observations)
    with replaced_atomically(folder / "datapackage.json") as temporary:  # last: a package is whole once it is there
        temporary.write_text(json.dumps(descriptor, indent=2, ensure_ascii=False), encoding="utf-8")
    return CamtrapDpWritten(folder, len(rows), len(media), len(observations), left_out, zone, assumed)


def _deployment_rows(timed: list[FrameAnswer], given: Sequence[Mapping[str, str]] | None,
                     zone: Timezone) -> dict[str, dict]:
    """camera -> its deployments.csv row: the user's (only the Camtrap DP columns), its dates derived where missing."""
    cameras = sorted({answer.camera for answer in timed})
    if given is None:
        more = f" and {len(cameras) - 1} more" if len(cameras) > 1 else ""
        raise ZoolensError(f"Camtrap DP needs each deployment's latitude and longitude, which only you know: give a "
                           f"deployments.csv with deploymentID, latitude, longitude (deploymentID "
                           f"{cameras[0] or '(top folder)'!r}{more})")
    by_id: dict[str, Mapping[str, str]] = {}
    for row in given:
        key = str(row.get("deploymentID") or "").strip()
        if not key:
            raise ZoolensError("deployments: a row has no deploymentID")
        if key in by_id:
            raise ZoolensError(f"deployments: deploymentID {key!r} is given twice")
        by_id[key] = row
    ignored = sorted({str(column) for row in given for column in row if column not in DEPLOYMENT_COLUMNS})
    if ignored:
        log.warning("deployments: column(s) %s are not Camtrap DP deployment columns and are left out",
                    ", ".join(ignored))
    times = defaultdict(list)
    for answer in timed:
        times[answer.camera].append(answer.time)
    rows = {}
    for camera in cameras:
        key = camera if camera else (next(iter(by_id)) if len(by_id) == 1 else None)
        if key is None:
            raise ZoolensError("deployments: frames at the top of the folder predicted need a deployment: give "
                               "deployments.csv exactly one row, or put each camera's frames in a folder named after "
                               "its deploymentID")
        if key not in by_id:
            raise ZoolensError(f"deployments: no row with deploymentID {key!r} (the camera folder {key}): Camtrap DP "
                               "needs its latitude and longitude")
        row = {column: str(by_id[key].get(column) or "").strip() for column in DEPLOYMENT_COLUMNS}
        for column, low, high in (("latitude", -90, 90), ("longitude", -180, 180)):
            _check_number(key, column, row[column], low, high)
        for column, value in (("deploymentStart", min(times[camera])), ("deploymentEnd", max(times[camera]))):
            row[column] = _checked_datetime(key, column, row[column]) if row[column] else _stamp(value, zone)
        rows[camera] = row
    return rows


def _check_number(deployment: str, column: str, text: str, low: float, high: float) -> None:
    if not text:
        raise ZoolensError(f"deployments: deploymentID {deployment!r} has no {column}; Camtrap DP needs it (decimal "
                           "degrees, WGS84)")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise ZoolensError(f"deployments: deploymentID {deployment!r}: {column} {text!r} is not a number from {low} to "
                           f"{high}")


def _checked_datetime(deployment: str, column: str, text: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ZoolensError(f"deployments: deploymentID {deployment!r}: {column} {text!r} is not a date-time with its "
                           "time zone, such as 2021-05-31T08:25:38+02:00")
    return _stamp(value)


def _stamp(value: datetime, zone: Timezone | None = None) -> str:
    """A Camtrap DP date-time (%Y-%m-%dT%H:%M:%S%z): a naive camera time placed in `zone`, seconds, the zone written."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.replace(microsecond=0).isoformat()


def _project(facts: Mapping) -> dict:
    given = facts.get("project")
    if given is not None and not isinstance(given, Mapping):
        raise ZoolensError("project: `project` must be an object (Camtrap DP's project: title, samplingDesign, ...)")
    project = dict(given or {})
    missing = [key for key in PROJECT_REQUIRED if key not in project]
    if missing:
        raise ZoolensError(f"project: Camtrap DP needs the project's {', '.join(missing)}, which only you know: give "
                           'them in the project file, such as {"project": {"title": "...", "samplingDesign": '
                           '"opportunistic", "captureMethod": ["activityDetection"]}, "contributors": [...]}')
    project.setdefault("individualAnimals", False)  # zoolens identifies no individual animals
    project.setdefault("observationLevel", ["media", "event"])
    if not isinstance(project["captureMethod"], list):
        project["captureMethod"] = [project["captureMethod"]]
    if project["samplingDesign"] not in SAMPLING_DESIGNS:
        raise ZoolensError(f"project: samplingDesign {project['samplingDesign']!r} is not one of "
                           f"{', '.join(SAMPLING_DESIGNS)}")
    wrong = [method for method in project["captureMethod"] if method not in CAPTURE_METHODS]
    if wrong or not project["captureMethod"]:
        raise ZoolensError(f"project: captureMethod {wrong[0] if wrong else '[]'!r} is not one of "
                           f"{', '.join(CAPTURE_METHODS)}")
    if not facts.get("contributors"):
        raise ZoolensError('project: Camtrap DP needs contributors, which only you know: give them in the project '
                           'file, such as "contributors": [{"title": "Your Name", "role": "contact"}]')
    return project


def _media_id(path: str) -> str:
    return "m" + event_id("", None, path)  # a stable hash of the path (event_id's, for a frame of its own)


def _media_row(answer: FrameAnswer, deployment: str, zone: Timezone, capture_methods: list) -> dict:
    mediatype = mimetypes.guess_type(answer.path)[0] or f"image/{PurePosixPath(answer.path).suffix.lstrip('.').lower()}"
    return {
        "mediaID": _media_id(answer.path),
        "deploymentID": deployment,
        "captureMethod": capture_methods[0] if len(capture_methods) == 1 else "",
        "timestamp": _stamp(answer.time, zone),
        "filePath": answer.path,
        "filePublic": "false",
        "fileName": PurePosixPath(answer.path).name,
        "fileMediatype": mediatype,
        "mediaComments": answer.error if answer.kind == "unreadable" else "",
    }


def _scientific_name(species: str, scientific_names: Mapping[str, str] | None) -> str:
    return str((scientific_names or {}).get(species) or species)


def _probability(value: float | None) -> str:
    return "" if value is None else f"{float(value):.4f}"


def _media_observation(answer: FrameAnswer, event: EventAnswer, deployment: str, zone: Timezone,
                       scientific_names, classified_by: str, classified_at: str) -> dict:
    stamp = _stamp(answer.time, zone)
    species, probability = (answer.classifications[0] if answer.classifications else ("", answer.kind_confidence))
    row = {
        "observationID": _media_id(answer.path) + "-m",
        "deploymentID": deployment,
        "mediaID": _media_id(answer.path),
        "eventID": event.event_id,
        "eventStart": stamp,
        "eventEnd": stamp,
        "observationLevel": "media",
        "observationType": OBSERVATION_TYPE[answer.kind],
        "scientificName": _scientific_name(species, scientific_names),
    }
    if answer.kind == "unreadable":
        row["observationComments"] = answer.error or "unreadable"
    else:
        row.update(classificationMethod="machine", classifiedBy=classified_by, classificationTimestamp=classified_at,
                   classificationProbability=_probability(probability))
    return row


def _event_observation(event: EventAnswer, deployment: str, zone: Timezone, scientific_names,
                       classified_by: str, classified_at: str) -> dict:
    row = {
        "observationID": event.event_id + "-e",
        "deploymentID": deployment,
        "eventID": event.event_id,
        "eventStart": _stamp(event.start, zone),
        "eventEnd": _stamp(event.end, zone),
        "observationLevel": "event",
        "observationType": OBSERVATION_TYPE[event.kind],
        "scientificName": _scientific_name(event.species, scientific_names),
        "observationComments": ", ".join(f"{event.counts.get(kind, 0)} {kind}" for kind in KINDS
                                         if event.counts.get(kind)),
    }
    if event.kind != "unreadable":
        probability = event.species_confidence if event.species else event.kind_confidence
        row.update(classificationMethod="machine", classifiedBy=classified_by, classificationTimestamp=classified_at,
                   classificationProbability=_probability(probability))
    return row


def _spatial(rows: Iterable[dict]) -> dict:
    """GeoJSON of the deployments: their point, or the box around them (as the Camtrap DP example)."""
    points = sorted({(float(row["longitude"]), float(row["latitude"])) for row in rows})
    if len(points) == 1:
        return {"type": "Point", "coordinates": list(points[0])}
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    return {"type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def _temporal(rows: Iterable[dict]) -> dict:
    rows = list(rows)
    starts = [datetime.fromisoformat(row["deploymentStart"]) for row in rows]
    ends = [datetime.fromisoformat(row["deploymentEnd"]) for row in rows]
    return {"start": min(starts).date().isoformat(), "end": max(ends).date().isoformat()}


def _descriptor(facts: Mapping, project: dict, rows: Iterable[dict], observations: list[dict], zone: Timezone,
                assumed: bool, classified_by: str, created: datetime) -> dict:
    rows = list(rows)
    zone_text = _zone_text(zone)
    description = (f"Camera-trap observations made by {classified_by}: a media-level observation for every frame with "
                   "a capture time and an event-level one for each event. Media filePath is relative to the folder "
                   "the frames were predicted from. ")
    description += (f"The cameras' time zone was not given: their times were taken as {zone_text}." if assumed else
                    f"Times are the cameras' clocks at UTC{zone_text}.")
    names = sorted({row["scientificName"] for row in observations if row.get("scientificName")})
    descriptor = {
        "profile": CAMTRAP_DP_PROFILE,
        "created": created.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "description": description,
        "contributors": facts["contributors"],
        "project": project,
        "spatial": _spatial(rows),
        "temporal": _temporal(rows),
        "taxonomic": [{"scientificName": name} for name in names],
        "resources": [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
                       "mediatype": "text/csv", "encoding": "utf-8",
                       "schema": f"{_CAMTRAP_DP_BASE}/{name}-table-schema.json"} for name in CAMTRAP_DP_TABLES],
    }
    for key, value in facts.items():
        if key in ("profile", "resources"):
            log.warning("project: %r is zoolens' to write in a Camtrap DP package; the one given is left out", key)
        elif key != "project":
            descriptor[key] = value
    return descriptor


def _zone_text(zone: Timezone) -> str:
    offset = zone.utcoffset(None) or timedelta(0)
    if zone is _ASSUMED_ZONE or offset == timedelta(0):
        return "UTC" if zone is _ASSUMED_ZONE else "+00:00"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    with replaced_atomically(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(column, row.get(column, "")) for column in columns])


def _cell(column: str, value):
    """Text cells through the spreadsheet rule (zoolens.spreadsheet); numbers, booleans and date-times as they are."""
    if value is None:
        return ""
    return value if column in _NOT_TEXT else to_cell(value)


# --- events ---------------------------------------------------------------------------------------------------------

def write_events_csv(events: Sequence[EventAnswer], path: str | Path) -> Path:
    """One row per event: eventID, camera, start, end (the camera's clock, ISO 8601), frames, kind, kind_confidence,
    species, species_confidence, and the count of its frames of each kind; written atomically."""
    rows = []
    for event in sorted(events, key=lambda e: (e.camera, e.start is None, e.start or datetime.min, e.frames)):
        rows.append({
            "eventID": event.event_id, "camera": event.camera,
            "start": event.start.isoformat() if event.start else "", "end": event.end.isoformat() if event.end else "",
            "frames": len(event.frames), "kind": event.kind, "kind_confidence": _probability(event.kind_confidence),
            "species": event.species, "species_confidence": _probability(event.species_confidence),
            **{kind: event.counts.get(kind, 0) for kind in KINDS}})
    path = Path(path)
    with replaced_atomically(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVENT_CSV_COLUMNS)
            writer.writeheader()
            writer.writerows({key: to_cell(value) for key, value in row.items()} for row in rows)
    return path
