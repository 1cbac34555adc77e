"""Which photos must stay together in a split: frames of one event (a camera-trap burst: near-copies of each other),
and, when asked, of one camera or one site. A split that puts one burst's frames in both train and test measures
how well the model remembers the burst, not how well it knows the species.

Events are formed as everywhere else in zoolens (data.camera_trap): frames of one camera within the sequence gap
of each other, by the time their source gives (a Camtrap DP timestamp) or their EXIF capture time; a frame without
a usable time is an event of its own. Frames that their source says share an event (a Camtrap DP eventID) are kept
together too, whatever their times.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zoolens.choices import GroupBy, OneOf
from zoolens.data.camera_trap import DEFAULT_SEQUENCE_GAP_S, Frame, capture_time, form_events, frame_events
from zoolens.data.folders import ImageFolder, Sample
from zoolens.data.images import PHOTO_FORMATS
from zoolens.errors import ConfigError

TIME_READERS = 4  # threads reading EXIF headers: the work is waiting on the disk


@dataclass
class Groups:
    """Each photo's group under `by` (event, camera or site), and a line saying what was found."""

    by: str
    of: dict[Path, str]
    note: str

    def count(self) -> int:
        return len(set(self.of.values()))


def resolve_group_by(folder: ImageFolder, group_by: str | None) -> str | None:
    """What a split of `folder` groups by: `group_by` as asked ("none": no grouping), else by event for camera-trap
    sources (a labels CSV, a Camtrap DP package) and not at all for class folders (their split as it always was)."""
    if group_by is None:
        return None if folder.source == "folders" else "event"
    OneOf(GroupBy).check("group_by", group_by)
    return None if group_by == GroupBy.NONE else GroupBy(group_by)


def sample_groups(folder: ImageFolder, samples: list[Sample], by: str,
                  gap_s: float = DEFAULT_SEQUENCE_GAP_S) -> Groups:
    if by == GroupBy.EVENT:
        return _event_groups(folder, samples, gap_s)
    if by == GroupBy.CAMERA:
        groups = {s.path: folder.cameras.get(s.path, "") for s in samples}
        if len(set(groups.values())) < 2:
            raise ConfigError("group_by", f"camera: every photo of {folder.given or folder.root} is of one camera (a "
                                          "camera is a photo's folder, below its class folder); nothing to split by")
        return Groups("camera", groups, f"{len(set(groups.values()))} cameras")
    if by == GroupBy.SITE:
        if folder.sites is None:
            raise ConfigError("group_by", f"site: {folder.given or folder.root} names no sites (a labels CSV's site "
                                          "column, or a Camtrap DP package's locationID)")
        groups = {s.path: folder.sites.get(s.path) or f"\x00{s.path}" for s in samples}
        unnamed = sum(1 for s in samples if not folder.sites.get(s.path))
        note = f"{len(set(groups.values())) - unnamed} sites"
        return Groups("site", groups, note + (f"; {unnamed} photos without a site, each a group of its own"
                                              if unnamed else ""))
    raise ConfigError("group_by", f"{by!r}: choose from {', '.join(GroupBy.values())}")


def _event_groups(folder: ImageFolder, samples: list[Sample], gap_s: float) -> Groups:
    times = folder.times if folder.times is not None else capture_times([s.path for s in samples])
    frames = [Frame(str(s.path), folder.cameras.get(s.path, ""), times.get(s.path)) for s in samples]
    events = frame_events(form_events(frames, gap_s))
    groups = {s.path: events[str(s.path)].event_id for s in samples}
    groups = _joined(groups, folder.event_links)
    timeless = sum(1 for s in samples if times.get(s.path) is None)
    note = f"{len(set(groups.values()))} events (frames of one camera within {gap_s:g} s of each other)"
    if timeless:
        note += f"; {timeless} photos without a capture time, each an event of its own"
    return Groups("event", groups, note)


def _joined(groups: dict[Path, str], links: dict[Path, str]) -> dict[Path, str]:
    """`groups` with any two of them that hold photos of one linked event made one (connected components)."""
    if not links:
        return groups
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = {name: i for i, name in enumerate(sorted(set(groups.values())))}
    first_of_link: dict[str, int] = {}
    edges = []
    for path, link in links.items():
        if path in groups:
            edges.append((first_of_link.setdefault(link, nodes[groups[path]]), nodes[groups[path]]))
    rows, cols = zip(*edges) if edges else ((), ())
    graph = coo_matrix(([1] * len(rows), (rows, cols)), shape=(len(nodes), len(nodes)))
    _, component = connected_components(graph, directed=False)
    name_of = {}
    for name, index in nodes.items():  # each component named by its first group, so names stay stable
        name_of.setdefault(component[index], name)
    return {path: name_of[component[nodes[name]]] for path, name in groups.items()}


def capture_times(paths: list[Path]) -> dict[Path, object]:
    """Each photo's EXIF capture time (data.camera_trap.capture_time: only the header is read), None where it has
    no usable one or cannot be opened (it is then an event of its own; reading it for training says why)."""
    with ThreadPoolExecutor(TIME_READERS) as pool:
        return dict(zip(paths, pool.map(_capture_time, paths)))


def _capture_time(path: Path):
    from PIL import Image

    try:
        with Image.open(path, formats=PHOTO_FORMATS) as image:
            return capture_time(image).time
    except Exception:  # noqa: BLE001 - any photo Pillow cannot open has no time; the training read names it
        return None


def groups_across_parts(rows, groups: Groups) -> tuple[int, list[str]]:
    """How many groups have photos in more than one part of a split (rows: (sample, role)), and a few of them."""
    parts: dict[str, set[str]] = {}
    example: dict[str, str] = {}
    for sample, role in rows:
        name = groups.of.get(sample.path)
        if name is not None:
            parts.setdefault(name, set()).add(role)
            example.setdefault(name, sample.path.name)
    split = [name for name, roles in parts.items() if len(roles) > 1]
    return len(split), [example[name] for name in split[:3]]
