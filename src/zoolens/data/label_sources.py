"""Camera-trap labels as a dataset, the same shape as class folders (`ImageFolder`: photos, labels, parts):

- A labels CSV, as zamba takes it: `filepath,label`, optionally `split` (train / val / test; zamba's `holdout` is
  test) and `site`; paths relative to the CSV's folder (an absolute one must lie inside it). A row zoolens cannot
  use as written (no label, an unknown split, a path outside the folder, a second label for one photo) refuses the
  file in one line naming it and the row; a photo that is missing or unreadable is named and left out, as in class
  folders. Cells are read by the spreadsheet rule (`from_cell`).
- A Camtrap DP package's folder (`datapackage.json`, `media.csv`, `observations.csv`; 1.0): each frame is labelled
  by its media-level observations, else by the event-level ones whose deployment and eventStart..eventEnd hold its
  timestamp. Of one level's observations a person's (`classificationMethod` human) count over a machine's. An
  `animal` observation is labelled by its `scientificName`; `blank`, `human` and `vehicle` are labels of their own
  (the classes camera-trap classifiers are trained with); `unknown` and `unclassified` say nothing to learn and
  leave the frame out, as do a frame with two different labels (one photo trains one class; a `blank` beside an
  animal is the blank one dropped) and media that are remote (URLs) or missing here: each reason is one line with
  its count and first examples. A frame's camera is its deployment, its site the deployment's `locationID`, its
  time its `timestamp`, and the eventID of its observations links it to the other frames of that event.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from zoolens.data.camera_trap import camera_of
from zoolens.data.class_names import readable_names
from zoolens.data.folders import ImageFolder, Sample
from zoolens.data.images import file_problem, is_image_name
from zoolens.errors import ZoolensError
from zoolens.files import lies_inside, read_json, regular_file, relative_inside
from zoolens.spreadsheet import from_cell

MAX_LABELS_BYTES = 1 << 30  # ten million rows of long paths; a larger file is refused unread
# zamba's split names, and the folder names data.folders reads as parts
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test", "holdout": "test"}
CAMTRAP_LABELS = {"blank": "blank", "human": "human", "vehicle": "vehicle"}  # observationType -> label
EXAMPLES = 3  # examples named in a line that stands for many left-out rows


# ---- what a source is ------------------------------------------------------------------------------
def is_labels_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and not path.is_dir()


def is_camtrap_dp(path: Path) -> bool:
    return path.is_dir() and (path / "datapackage.json").is_file()


def _rows(path: Path, what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """A CSV's header (names stripped, lower case) and its rows with the line each starts on; a file that cannot be
    read as CSV text refused in one line."""
    try:
        regular_file(path, MAX_LABELS_BYTES)
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            rows, line = [], reader.line_num + 1
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    rows.append((line, dict(zip(header, cells))))
                line = reader.line_num + 1
    except FileNotFoundError:
        raise ZoolensError(f"{path}: no such file ({what})") from None
    except (OSError, csv.Error) as error:
        raise ZoolensError(f"{path}: cannot be read as a CSV file ({error})") from None
    return header, rows


def _cell(row: dict, name: str) -> str:
    value = from_cell(row.get(name))
    return value.strip() if isinstance(value, str) else ""


def _summary(reason: str, examples: list[str]) -> str:
    shown = ", ".join(examples[:EXAMPLES]) + (", ..." if len(examples) > EXAMPLES else "")
    return f"{len(examples)} {reason}, left out: {shown}"


def _dataset(root: Path, samples: list[Sample], what: str, **facts) -> ImageFolder:
    classes = sorted({sample.label for sample in samples})
    if len(classes) < 2:
        found = f"found only {classes[0]!r}" if classes else "found none"
        left_out = [reason for _, reason in facts.get("skipped", []) if ", left out: " in reason]
        found += "".join(f"; {reason.split(', left out: ')[0]} left out" for reason in left_out)
        raise ZoolensError(f"{what}: needs photos of at least two labels to train on; {found}")
    return ImageFolder(root=root, classes=classes, samples=samples, names=readable_names(root, classes), **facts)


# ---- a labels CSV ----------------------------------------------------------------------------------
def read_labels_csv(path: str | Path) -> ImageFolder:
    path = Path(path).expanduser()
    root = path.parent
    header, rows = _rows(path, "the labels CSV")
    missing = [name for name in ("filepath", "label") if name not in header]
    if missing:
        raise ZoolensError(f"{path}: line 1: a labels CSV needs the columns filepath and label (optional: split, "
                           f"site); {' and '.join(missing)} missing (found: {', '.join(header) or 'nothing'})")
    has_split, has_site = "split" in header, "site" in header
    samples, parts, sites, cameras, skipped = [], {}, {}, {}, []
    seen: dict[Path, tuple[int, str]] = {}
    for line, row in rows:
        where = f"{path}: line {line}"
        relative, label = _cell(row, "filepath"), _cell(row, "label")
        if not relative or not label:
            raise ZoolensError(f"{where}: needs a filepath and a label")
        photo = _photo_in(root, relative, where)
        if has_split:
            role = SPLIT_NAMES.get(_cell(row, "split").lower())
            if role is None:
                raise ZoolensError(f"{where}: split {_cell(row, 'split')!r} is not train, val, test (or holdout); the "
                                   "split column gives every photo's part, or is left out")
        if photo in seen:
            if seen[photo][1] != label:
                raise ZoolensError(f"{where}: {relative!r} is labelled {label!r} here and {seen[photo][1]!r} on line "
                                   f"{seen[photo][0]}; give each photo one label")
            skipped.append((str(photo), f"listed again on line {line} of {path.name}; used once"))
            continue
        seen[photo] = (line, label)
        if not is_image_name(photo):
            skipped.append((str(photo), f"line {line} of {path.name}: not an image file type "
                                        f"({photo.suffix or 'no extension'})"))
            continue
        if problem := file_problem(photo):
            skipped.append((str(photo), f"line {line} of {path.name}: {problem}"))
            continue
        samples.append(Sample(photo, label))
        cameras[photo] = camera_of(photo.relative_to(root).as_posix())
        if has_split:
            parts[photo] = role
        if has_site:
            sites[photo] = _cell(row, "site")
    if rows and not samples:
        raise ZoolensError(f"{path}: none of its {len(rows)} photos can be read (paths are relative to the CSV's "
                           f"folder {root}; first: {skipped[0][0]}: {skipped[0][1]})")
    return _dataset(root, samples, str(path), parts=parts if has_split else None, skipped=skipped, source="labels",
                    given=path, cameras=cameras, sites=sites if has_site else None)


def _photo_in(root: Path, relative: str, where: str) -> Path:
    """A row's photo: a path relative to `root`, or an absolute one inside it; anything else refuses the file (a
    labels file someone sent never makes zoolens read outside the folder it sits in)."""
    if relative_inside(relative):
        return root / relative.replace("\\", "/")
    if Path(relative).is_absolute() and ".." not in Path(relative).parts and lies_inside(relative, root):
        return Path(relative)
    raise ZoolensError(f"{where}: {relative!r} is not a photo inside the CSV's folder {root}; zoolens reads only "
                       "photos in the folder of the labels CSV (paths relative to it)")


# ---- a Camtrap DP package ----------------------------------------------------------------------------
def read_camtrap_dp(folder: str | Path) -> ImageFolder:
    folder = Path(folder).expanduser()
    package = read_json(folder / "datapackage.json")
    if not isinstance(package, dict):
        raise ZoolensError(f"{folder / 'datapackage.json'}: not a data package (a JSON object with resources)")
    tables = {name: _resource(folder, package, name) for name in ("deployments", "media", "observations")}
    media = _media(tables["media"], folder)
    observations = _observations(tables["observations"])
    locations = _locations(tables["deployments"])
    samples, cameras, times, links, sites = [], {}, {}, {}, {}
    left_out: dict[str, list[str]] = defaultdict(list)
    for item in media:
        if item.get("problem"):
            left_out[item["problem"]].append(item["example"])
            continue
        label, reason, event = _media_label(item, observations)
        if label is None:
            left_out[reason].append(item["filePath"])
            continue
        photo = item["photo"]
        samples.append(Sample(photo, label))
        cameras[photo], times[photo] = item["deploymentID"], item["time"]
        sites[photo] = locations.get(item["deploymentID"], "")
        if event:
            links[photo] = event
    skipped = [(str(tables["media"]), _summary(reason, examples)) for reason, examples in left_out.items()]
    return _dataset(folder, samples, f"{folder} (Camtrap DP)", skipped=skipped, source="camtrap-dp", cameras=cameras,
                    sites=sites if any(sites.values()) else None, times=times, event_links=links)


def _resource(folder: Path, package: dict, name: str) -> Path:
    """The file of a resource the package names (Camtrap DP: deployments, media, observations), inside its folder."""
    for resource in package.get("resources") or []:
        if isinstance(resource, dict) and resource.get("name") == name:
            relative = resource.get("path")
            if isinstance(relative, str) and relative_inside(relative):
                return folder / relative
            raise ZoolensError(f"{folder / 'datapackage.json'}: resource {name!r} has path {relative!r}; zoolens "
                               "reads a package's tables from files inside its folder")
    if name == "deployments":
        return folder / "deployments.csv"
    raise ZoolensError(f"{folder / 'datapackage.json'}: no {name!r} resource; a Camtrap DP package has deployments, "
                       "media and observations")


def _needs(path: Path, header: list[str], columns: tuple[str, ...]) -> None:
    missing = [name for name in columns if name.lower() not in header]
    if missing:
        raise ZoolensError(f"{path}: line 1: missing Camtrap DP column(s) {', '.join(missing)}")


def _lowered(row: dict, name: str) -> str:
    return _cell(row, name.lower())


def _media(path: Path, folder: Path) -> list[dict]:
    """The media table's rows, each with its photo (filePath is relative to the package's folder) and UTC time, or the
    problem that leaves it out."""
    header, rows = _rows(path, "the package's media table")
    _needs(path, header, ("mediaID", "deploymentID", "timestamp", "filePath"))
    media = []
    for line, row in rows:
        item = {name: _lowered(row, name) for name in ("mediaID", "deploymentID", "timestamp", "filePath",
                                                       "fileMediatype")}
        item["time"] = _utc(item["timestamp"])
        where, relative = f"line {line}", item["filePath"]
        if "://" in relative:
            item.update(problem="remote media (URLs: zoolens trains on photos on this machine)", example=relative)
        elif not relative_inside(relative):
            item.update(problem="media outside the package's folder", example=f"{where}: {relative!r}")
        elif item["fileMediatype"] and not item["fileMediatype"].startswith("image/"):
            item.update(problem="media that are not photos", example=f"{where}: {relative} ({item['fileMediatype']})")
        elif problem := file_problem(folder / relative):
            item.update(problem=f"media not usable here ({problem})" if problem != "file not found"
                        else "media not found in the package's folder", example=f"{where}: {relative}")
        elif not is_image_name(Path(relative)):
            item.update(problem="media that are not photos", example=f"{where}: {relative}")
        item["photo"] = folder / relative
        media.append(item)
    return media


def _utc(text: str) -> datetime | None:
    """A Camtrap DP timestamp (ISO 8601 with its offset) as a naive UTC time, comparable across the package; one
    without an offset as written; None where unreadable (the frame is then an event of its own)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _observations(path: Path) -> dict:
    """Media-level observations by mediaID, event-level ones by deploymentID (each with its UTC start and end)."""
    header, rows = _rows(path, "the package's observations table")
    _needs(path, header, ("deploymentID", "mediaID", "observationType"))
    by_media, by_deployment = defaultdict(list), defaultdict(list)
    for _, row in rows:
        item = {name: _lowered(row, name) for name in ("deploymentID", "mediaID", "eventID", "eventStart", "eventEnd",
                                                       "observationLevel", "observationType", "scientificName",
                                                       "classificationMethod")}
        level = item["observationLevel"].lower() or ("media" if item["mediaID"] else "event")
        if level == "media" and item["mediaID"]:
            by_media[item["mediaID"]].append(item)
        elif level == "event":
            item["start"], item["end"] = _utc(item["eventStart"]), _utc(item["eventEnd"])
            if item["start"] is not None and item["end"] is not None:
                by_deployment[item["deploymentID"]].append(item)
    return {"media": by_media, "event": by_deployment}


def _locations(path: Path) -> dict[str, str]:
    """deploymentID -> locationID, where the package has a deployments table that says."""
    if not path.is_file():
        return {}
    header, rows = _rows(path, "the package's deployments table")
    return {_lowered(row, "deploymentID"): _lowered(row, "locationID") for _, row in rows} if "locationid" in header \
        else {}


def _media_label(item: dict, observations: dict) -> tuple[str | None, str, str]:
    """(label, why there is none, the eventID its observations give) of one frame."""
    found = observations["media"].get(item["mediaID"], [])
    if not found and item["time"] is not None:
        found = [event for event in observations["event"].get(item["deploymentID"], [])
                 if event["start"] <= item["time"] <= event["end"]]
    if not found:
        return None, "frames without an observation", ""
    people = [obs for obs in found if obs["classificationMethod"].lower() == "human"]
    found = people or found
    event = next((obs["eventID"] for obs in found if obs["eventID"]), "")
    labels = set()
    for obs in found:
        kind = obs["observationType"].lower()
        if kind == "animal" and obs["scientificName"]:
            labels.add(obs["scientificName"])
        elif kind in CAMTRAP_LABELS:
            labels.add(CAMTRAP_LABELS[kind])
    if len(labels) > 1:
        labels.discard("blank")  # an animal seen in a frame someone also called blank: the animal
    if len(labels) == 1:
        return labels.pop(), "", event
    if labels:
        return None, "frames with two different labels (one photo trains one class)", event
    return None, "frames observed only as unknown or unclassified, or as an animal without a scientificName " \
                 "(nothing to learn)", event
