"""Time, camera and event of camera-trap frames, on the real frames of shared/datasets/camera-traps and on hostile
metadata written on the fly."""

import io
import logging
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from helpers import exif_with_zero_denominator_gps
from PIL import Image

from zoolens.data.camera_trap import (
    Frame,
    camera_of,
    capture_time,
    form_events,
    frame_events,
    parse_exif_time,
    parse_timezone,
)
from zoolens.errors import ZoolensError


@pytest.fixture(scope="module")
def camera_traps():
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def read_time(path):
    with Image.open(path) as image:
        return capture_time(image)


def frames_of(root, paths):
    return [Frame(p.relative_to(root).as_posix(), camera_of(p.relative_to(root).as_posix()), read_time(p).time)
            for p in paths]


def test_the_burst_of_the_camtrap_dp_example_is_one_event_with_its_exif_times(camera_traps):
    root = camera_traps / "camtrap-dp-example"
    photos = sorted((root / "media").glob("*.JPG"))
    times = [read_time(p) for p in photos]
    assert [t.text for t in times][:2] == ["2021:04:11 20:43:09", "2021:04:11 20:43:10"]
    assert all(t.problem == "" for t in times)
    events = form_events(frames_of(root, photos))
    assert len(events) == 1
    (event,) = events
    assert event.camera == "media" and len(event.frames) == 10
    assert (event.start, event.end) == (datetime(2021, 4, 11, 20, 43, 9), datetime(2021, 4, 11, 20, 43, 15))


def test_frames_of_different_times_and_frames_without_time_are_events_of_their_own(camera_traps):
    root = camera_traps / "speciesnet-test"
    photos = sorted(p for p in root.glob("*.jpg") if "truncated" not in p.name)
    frames = frames_of(root, photos)
    untimed = [f.path for f in frames if f.time is None]
    assert "african_elephants_bw.jpg" in untimed and "american_black_bear.jpg" in untimed
    events = form_events(frames)
    # the three elephant copies with the same EXIF time are one event; every other frame is alone
    elephants = frame_events(events)["african_elephants.jpg"]
    assert sorted(elephants.frames) == ["african_elephants.jpg", "african_elephants_with_exif_orientation.jpg"]
    assert len(events) == len(frames) - 1
    assert all(len(e.frames) == 1 for e in events if e is not elephants)


def test_ena24_frames_have_no_time_and_each_is_an_event(camera_traps):
    root = camera_traps / "ena24"
    photos = sorted(root.glob("*.jpg"))
    frames = frames_of(root, photos)
    assert sum(f.time is None for f in frames) == len(frames) - 1  # 49.jpg alone carries a time
    assert len(form_events(frames)) == len(frames)


def test_the_gap_splits_a_burst_and_event_ids_do_not_depend_on_order_or_chunks():
    t0 = datetime(2024, 5, 1, 6, 0, 0)
    frames = [Frame(f"cam1/{i:03d}.jpg", "cam1", t0 + timedelta(seconds=s)) for i, s in enumerate([0, 5, 30, 200, 230])]
    frames.append(Frame("cam2/001.jpg", "cam2", t0))  # same time, other camera: another event
    events = form_events(frames, gap_s=60)
    assert sorted(len(e.frames) for e in events) == [1, 2, 3]
    assert len(form_events(frames, gap_s=10)) == 5
    shuffled = form_events(list(reversed(frames)), gap_s=60)
    assert {e.event_id: e.frames for e in events} == {e.event_id: e.frames for e in shuffled}
    with pytest.raises(ZoolensError):
        form_events(frames, gap_s=-1)


@pytest.mark.parametrize("path, camera", [
    ("siteA/cam3/100RECNX/IMG_0001.JPG", "siteA/cam3"),
    ("siteA/cam3/101RECNX/IMG_0001.JPG", "siteA/cam3"),
    ("B/100MEDIA/x.jpg", "B"),
    ("C/100EK113/x.jpg", "C"),
    ("D/100_BTCF/x.jpg", "D"),
    ("E\\F\\x.jpg", "E/F"),
    ("x.jpg", ""),
    ("RECNX/x.jpg", "RECNX"),
])
def test_the_camera_is_the_folder_without_overflow_folders(path, camera):
    assert camera_of(path) == camera


@pytest.mark.parametrize("text, problem", [
    (None, "no EXIF time"),
    ("", "no EXIF time"),
    ("0000:00:00 00:00:00", "year 0000"),
    ("1970:01:01 00:00:05", "before 2000"),
    ("2999:01:01 00:00:00", "in the future"),
    ("2021:02:30 10:00:00", "invalid time"),
    ("yesterday", "unparseable"),
    (b"\xff\xfe\x00garbage", "unparseable"),
])
def test_an_implausible_time_is_flagged_and_not_used(text, problem):
    read = parse_exif_time(text)
    assert read.time is None and problem in read.problem


def test_a_plausible_time_is_used_in_any_of_the_usual_spellings():
    for text in ("2021:04:11 20:43:09", "2021-04-11 20:43:09", "2021-04-11T20:43:09", "2021:04:11 20:43:09\x00"):
        assert parse_exif_time(text).time == datetime(2021, 4, 11, 20, 43, 9)


def jpeg_with_exif(exif_bytes: bytes) -> Image.Image:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(buffer, "JPEG", exif=exif_bytes)
    buffer.seek(0)
    return Image.open(buffer)


def test_garbage_exif_and_a_gps_block_with_zero_denominators_are_read_without_an_error():
    garbage = jpeg_with_exif(b"Exif\x00\x00" + bytes(range(256)) * 4)
    assert capture_time(garbage).time is None
    with_gps = jpeg_with_exif(exif_with_zero_denominator_gps("2022:06:01 12:00:00"))
    assert capture_time(with_gps).time == datetime(2022, 6, 1, 12)


def test_a_clock_reset_is_said_in_one_line(caplog):
    t0 = datetime(2024, 5, 1, 6, 0, 0)
    frames = [Frame("cam/IMG_0001.JPG", "cam", t0), Frame("cam/IMG_0002.JPG", "cam", t0 - timedelta(days=300))]
    with caplog.at_level(logging.WARNING):
        form_events(frames)
    assert [r.getMessage() for r in caplog.records if "clock was probably reset" in r.getMessage()]


@pytest.mark.parametrize("text, offset", [("+02:00", 2), ("-05:00", -5), ("+0530", 5.5), ("Z", 0), ("UTC", 0)])
def test_time_zones_are_fixed_offsets(text, offset):
    assert parse_timezone(text) == timezone(timedelta(hours=offset))


@pytest.mark.parametrize("text", ["CET", "+25:00", "2", "+02:75"])
def test_a_time_zone_that_is_not_an_offset_is_refused_in_one_line(text):
    with pytest.raises(ZoolensError, match="time zone"):
        parse_timezone(text)


def test_same_file_name_in_two_camera_folders_stays_two_frames(camera_traps, tmp_path):
    source = camera_traps / "camtrap-dp-example" / "media"
    first = sorted(source.glob("*.JPG"))[0]
    for camera in ("north", "south"):
        (tmp_path / camera).mkdir()
        shutil.copyfile(first, tmp_path / camera / "IMG.JPG")
    frames = frames_of(tmp_path, sorted(tmp_path.rglob("*.JPG")))
    events = form_events(frames)
    assert sorted(e.camera for e in events) == ["north", "south"]
