"""A dataset is a folder of class folders (`DATA/<class>/*.jpg`), or one already split
(`DATA/{train,val,test}/<class>/`), or a second source of the same shape (data.label_sources): a labels CSV
(`filepath,label[,split][,site]`) or a Camtrap DP package's folder. `scan_folder` is the one place every command
reads a dataset through. Reading it never writes inside it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from zoolens.data.camera_trap import camera_of
from zoolens.data.class_names import readable_names
from zoolens.data.images import file_problem, is_image_name, reading_problem
from zoolens.errors import ZoolensError

log = logging.getLogger(__name__)

SPLIT_FOLDER_ROLES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


@dataclass
class ImageFolder:
    """What was found under `root`: the classes, the photos, and every file left out and why."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    # For an already split folder: the role ("train"/"val"/"test") each sample's part plays.
    parts: dict[Path, str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # class -> the name people read (data.class_names)
    # Where the photos and labels came from: "folders" (class folders), "labels" (a labels CSV, `given`) or
    # "camtrap-dp" (a package's folder). The second two are camera-trap frames: their splits group by event.
    source: str = "folders"
    given: Path | None = None  # what the user named, where it is not `root` (a labels CSV)
    cameras: dict[Path, str] = field(default_factory=dict)  # photo -> its camera (deployment)
    sites: dict[Path, str] | None = None  # photo -> its site, where the source says ("" where a row has none)
    times: dict[Path, object] | None = None  # photo -> capture time (datetime or None) where the source says
    event_links: dict[Path, str] = field(default_factory=dict)  # photo -> an event id its source gives

    def name(self, label: str) -> str:
        return self.names.get(label, label)

    @property
    def presplit(self) -> bool:
        return self.parts is not None

    def counts(self) -> dict[str, int]:
        counts = {name: 0 for name in self.classes}
        for sample in self.samples:
            counts[sample.label] += 1
        return counts


def walk_files(folder: Path, problems: list[tuple[str, str]] | None = None) -> list[Path]:
    """Every file below `folder`, sorted; links to folders are not followed (no loops), and named. A folder that
    cannot be listed (no permission; a path longer than the system's limit, 4096 bytes on Linux) is added to `problems`
    with the reason, or logged as a warning: never left out silently."""
    found = []

    def left_out(path, reason: str) -> None:
        if problems is None:
            log.warning("%s: %s", path, reason)
        else:
            problems.append((str(path), reason))

    def unlisted(error: OSError) -> None:
        left_out(error.filename, "folder cannot be listed; its photos are left out "
                                 f"({reading_problem(error, error.filename)})")

    for current, dirs, files in os.walk(folder, followlinks=False, onerror=unlisted):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in dirs:
            if os.path.islink(os.path.join(current, name)):  # False, not an error, past the system's path limit
                left_out(Path(current) / name, "a link to a folder, not followed (a loop would never end); its "
                                               "photos are left out")
        found.extend(Path(current) / name for name in sorted(files) if not name.startswith("."))
    return found


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan_classes(folder: Path, skipped: list[tuple[str, str]], cameras: dict[Path, str]) -> list[Sample]:
    samples = []
    for class_dir in _class_dirs(folder):
        found = 0
        for path in walk_files(class_dir, skipped):
            if not is_image_name(path):
                skipped.append((str(path), f"not an image file type ({path.suffix or 'no extension'})"))
            elif problem := file_problem(path):
                skipped.append((str(path), problem))
            else:
                samples.append(Sample(path, class_dir.name))
                # The class folder is a label, not a camera: a photo's camera is its folder below it.
                cameras[path] = camera_of(path.relative_to(class_dir).as_posix())
                found += 1
        if not found:
            skipped.append((str(class_dir), "class folder has no usable images; class left out"))
    return samples


def _split_layout(root: Path) -> dict[str, Path] | None:
    subdirs = _class_dirs(root)
    roles = {SPLIT_FOLDER_ROLES.get(d.name.lower()): d for d in subdirs}
    if subdirs and None not in roles and "train" in roles:
        return roles
    return None


def class_folder_names(root: Path) -> list[str]:
    """The class folder names under `root` (of every part, for an already split folder), without reading photos."""
    try:
        layout = _split_layout(root)
        folders = list(layout.values()) if layout else [root]
        return sorted({d.name for folder in folders for d in _class_dirs(folder)})
    except OSError:
        return []


def scan_folder(root: str | Path) -> ImageFolder:
    """Find the classes and photos of a dataset: a folder of class folders, a labels CSV or a Camtrap DP package's
    folder (data.label_sources); raise ZoolensError when it cannot be a dataset."""
    from zoolens.data.label_sources import is_camtrap_dp, is_labels_csv, read_camtrap_dp, read_labels_csv

    root = Path(root).expanduser()
    if not root.exists():
        raise ZoolensError(f"{root}: no such folder or file")
    if is_labels_csv(root):
        return read_labels_csv(root)
    if not root.is_dir():
        raise ZoolensError(f"{root}: is a file; give a folder that holds one folder per class, a labels CSV "
                           "(filepath,label) or a Camtrap DP package's folder")
    if is_camtrap_dp(root):
        return read_camtrap_dp(root)
    skipped: list[tuple[str, str]] = []
    cameras: dict[Path, str] = {}
    layout = _split_layout(root)
    if layout is None:
        samples, parts = _scan_classes(root, skipped, cameras), None
        for path in sorted(p for p in root.iterdir() if p.is_file() and is_image_name(p)):
            skipped.append((str(path), "image not inside a class folder"))
    else:
        samples, parts = [], {}
        for role, folder in layout.items():
            found = _scan_classes(folder, skipped, cameras)
            samples.extend(found)
            parts.update({sample.path: role for sample in found})
    classes = sorted({sample.label for sample in samples})
    if len(classes) < 2:
        found = f"found {len(classes)} class folder with images" if classes else "found no class folders with images"
        raise ZoolensError(f"{root}: needs at least two class folders of images (DATA/<class>/*.jpg); {found}")
    return ImageFolder(root=root, classes=classes, samples=samples, parts=parts, skipped=skipped,
                       names=readable_names(root, classes), cameras=cameras)
