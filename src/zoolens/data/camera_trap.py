"""What a camera-trap frame carries besides its pixels: when it was taken (EXIF), which camera took it (its folder),
and which event (sequence, burst) it belongs to.

- Time: EXIF `DateTimeOriginal`, else `DateTime`, as the camera wrote it (no time zone: cameras keep none). The
  text read is kept; a time that cannot be right (year 0000, before 2000, in the future, unparseable) is flagged
  and not used. The file's modification time is never used: copying a card changes it.
- Camera: the frame's folder under the folder predicted, with camera overflow folders (`100RECNX`, `100MEDIA`,
  `100EK113`, `100_BTCF`) taken out, as MegaDetector's `image_file_to_camera_folder` does.
- Events: frames of one camera taken within `gap` seconds of the frame before form one event (MegaDetector's and
  Timelapse's sequences). A frame without a usable time is an event of its own. An event's id depends only on
  its camera and first time (or the frame's path), so it is the same however a job was chunked or resumed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

from zoolens.errors import ZoolensError

log = logging.getLogger(__name__)

DEFAULT_SEQUENCE_GAP_S = 60.0  # MegaDetector's and the default: one burst, one event
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1)  # a camera whose clock was never set says 1970, 1980 or year 0
FUTURE_SLACK = timedelta(days=1)  # a camera a few hours ahead of this machine's clock (time zones) is not "future"

_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 0x9003
_DATE_TIME = 0x0132
# Camera overflow folders, as MegaDetector lists them: Reconyx, Bushnell, Browning, consumer cameras.
_OVERFLOW_FOLDER = re.compile(r"^(\d+RECNX|\d+EK\d+|\d+_BTCF|\d+MEDIA)$", re.IGNORECASE)
_EXIF_TIME = re.compile(r"^\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class CaptureTime:
    """When a frame was taken, as its camera said: `text` as read ("" where none), `time` where it is usable
    (naive: the camera's own clock), `problem` in words where it is not."""

    text: str = ""
    time: datetime | None = None
    problem: str = "no EXIF time"


def capture_time(image, now: datetime | None = None) -> CaptureTime:
    """The capture time of an open Pillow image (only its header is read). Garbage EXIF is a problem, not an error."""
    try:
        exif = image.getexif()
        text = exif.get_ifd(_EXIF_IFD).get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds on damaged EXIF blocks; none stops the work
        return CaptureTime(problem=f"unreadable EXIF ({type(error).__name__})")
    return parse_exif_time(text, now)


def parse_exif_time(text, now: datetime | None = None) -> CaptureTime:
    """An EXIF date-time (`2021:04:11 20:43:09`, also with - or / and T) checked for being a plausible capture time."""
    if text is None or (isinstance(text, (str, bytes)) and not text.strip()):
        return CaptureTime()
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = str(text).replace("\x00", "").strip()[:40]
    match = _EXIF_TIME.match(text)
    if not match:
        return CaptureTime(text, None, f"unparseable time {text!r}")
    numbers = [int(part) for part in match.groups()]
    if numbers[0] == 0:
        return CaptureTime(text, None, f"invalid time {text!r} (year 0000: the camera's clock was not set)")
    try:
        value = datetime(*numbers)
    except ValueError:
        return CaptureTime(text, None, f"invalid time {text!r}")
    if value < EARLIEST_PLAUSIBLE:
        return CaptureTime(text, None, f"time {text!r} is before 2000 (the camera's clock was probably not set)")
    if value > (now or datetime.now()) + FUTURE_SLACK:
        return CaptureTime(text, None, f"time {text!r} is in the future")
    return CaptureTime(text, value, "")


def parse_timezone(text: str | None) -> timezone | None:
    """`--timezone +HH:MM` (also `Z`, `UTC`, `-0500`) as a fixed offset; None where not given."""
    if text is None:
        return None
    cleaned = text.strip().upper()
    if cleaned in ("Z", "UTC", "GMT"):
        return timezone.utc
    match = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2}):?(\d{2})?", cleaned)
    if not match:
        raise ZoolensError(f"time zone {text!r}: write it as an offset from UTC, such as +02:00 or -05:00")
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    offset = timedelta(hours=hours, minutes=minutes)
    if minutes >= 60 or offset > timedelta(hours=14):
        raise ZoolensError(f"time zone {text!r}: offsets run from -14:00 to +14:00")
    return timezone(-offset if sign == "-" else offset)


def camera_of(relative_path: str) -> str:
    """The camera (deployment) a frame belongs to: its folder under the folder predicted, overflow folders taken out;
    "" for a frame at the top of that folder."""
    parts = PurePosixPath(relative_path.replace("\\", "/")).parent.parts
    return "/".join(part for part in parts if part not in (".", "") and not _OVERFLOW_FOLDER.match(part))


@dataclass(frozen=True)
class Frame:
    """One frame as events are formed from it: its path (relative to the folder predicted), camera and time."""

    path: str
    camera: str
    time: datetime | None


@dataclass
class Event:
    """Frames of one camera within the sequence gap of each other, in time order."""

    event_id: str
    camera: str
    start: datetime | None
    end: datetime | None
    frames: list[str]


def event_id(camera: str, start: datetime | None, path: str = "") -> str:
    """A short id that depends only on what defines the event (its camera and first time; a timeless frame's path)."""
    key = f"{camera}\x00{start.isoformat()}" if start is not None else f"\x01{path}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def form_events(frames, gap_s: float = DEFAULT_SEQUENCE_GAP_S) -> list[Event]:
    """Events of `frames` (an iterable of Frame): per camera, in time order (then path), a new event wherever the time
    since the previous frame exceeds `gap_s`; each frame without a time an event of its own."""
    if gap_s < 0:
        raise ZoolensError(f"sequence gap {gap_s}: give a number of seconds, 0 or more")
    by_camera: dict[str, list[Frame]] = defaultdict(list)
    events: list[Event] = []
    for frame in frames:
        if frame.time is None:
            events.append(Event(event_id(frame.camera, None, frame.path), frame.camera, None, None, [frame.path]))
        else:
            by_camera[frame.camera].append(frame)
    gap = timedelta(seconds=gap_s)
    for camera, timed in by_camera.items():
        timed.sort(key=lambda frame: (frame.time, frame.path))
        _warn_of_clock_reset(camera, timed)
        current: list[Frame] = []
        for frame in timed:
            if current and frame.time - current[-1].time > gap:
                events.append(_event(camera, current))
                current = []
            current.append(frame)
        if current:
            events.append(_event(camera, current))
    return events


def _event(camera: str, frames: list[Frame]) -> Event:
    start = frames[0].time
    return Event(event_id(camera, start), camera, start, frames[-1].time, [frame.path for frame in frames])


def _warn_of_clock_reset(camera: str, timed: list[Frame]) -> None:
    """Cameras number their files in the order they take them: where a later-numbered file has an earlier time by
    more than a day, the clock was reset (batteries changed) and events across the reset may be wrong."""
    by_name = sorted(timed, key=lambda frame: frame.path)
    for before, after in zip(by_name, by_name[1:]):
        if before.time - after.time > timedelta(days=1):
            log.warning("camera %s: %s was taken %s, before %s (%s): its clock was probably reset; events are "
                        "formed from the times as read", camera or "(top folder)", after.path, after.time,
                        before.path, before.time)
            return


def frame_events(events: list[Event]) -> dict[str, Event]:
    """Each frame's path → its event."""
    return {path: event for event in events for path in event.frames}
