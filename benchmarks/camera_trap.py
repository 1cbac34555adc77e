"""A camera-trap season through `zoolens predict MODEL DIR --out R.parquet --camera-traps`, as a user runs it: the rate
of a synthetic season (mostly empty frames, in bursts, in several camera folders) against the same number of animal
photos of the same size, peak memory at N and 2N frames, the events `zoolens results --events` forms against the bursts
made, and the four answers (blank / animal / person / vehicle) on the real frames of the shared camera-traps set.
Prints one JSON object.

    .venv/bin/python benchmarks/camera_trap.py [--frames 200] [--model MODEL]

The season is made in a temporary folder from the shared real frames (speciesnet's three empty frames; ENA24's,
speciesnet's and the heron burst's animal frames), each frame a distinct jittered crop (85-100 % of the frame,
brightness 0.8-1.2) scaled to 2048 x 1536, with EXIF DateTimeOriginal: bursts of 3-10 frames 1-5 s apart, 1-12 h
between a camera's bursts, BLANK_SHARE of the bursts empty; cameras in folders, two of them split into overflow
folders (100RECNX, 101RECNX; 100MEDIA) as cameras write them. The animal photos are animals3's, scaled to 2048 x 1536.
The model is a frozen MobileNetV2 trained on animals3 inside the run (or --model): it knows none of these species.

The same pair of folders also runs without --camera-traps (the "turned_away" figures): there every empty frame is
turned away ("none of these") and asked whether it shows a person; its rate against the animal photos' is what issue
31 item 4 is about. Startup (imports, model, ONNX sessions) is inside every timing: it is what a user waits for; the
rate zoolens itself reports (after its startup) is given beside it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3, demo_model, fresh_cache  # noqa: E402

SIZE = (2048, 1536)  # ENA24's and speciesnet's usual frame
BLANK_SHARE = 0.7  # of the bursts: empty
BURST = (3, 10)  # frames in a burst
CAMERAS = ("ridge", "creek/100RECNX", "creek/101RECNX", "saltlick", "trail/100MEDIA")
BLANKS = ("blank.jpg", "blank2.jpg", "blank3.jpg")
SPECIES = ("african_elephants.jpg", "american_black_bear.jpg", "domestic_cattle.jpg", "domestic_dog.jpg", "ocelot.jpg")
START = datetime(2024, 5, 1, 6, 0, 0)

# Runs a command-line zoolens in this process, then prints its own and its children's peak resident memory (KiB).
_PEAK_WRAPPER = """
import resource, sys
from zoolens.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code or 0)
"""


def shared_frames() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("camera-traps")


def animal_frames(root: Path) -> list[Path]:
    return (sorted((root / "ena24").glob("*.jpg")) + [root / "speciesnet-test" / name for name in SPECIES]
            + sorted((root / "camtrap-dp-example" / "media").glob("*.JPG")))


def jittered(image, rng: random.Random):
    """A distinct frame of the same scene: a crop of 85-100 % of it, scaled to SIZE, brightness 0.8-1.2."""
    from PIL import Image, ImageEnhance

    share = rng.uniform(0.85, 1.0) ** 0.5
    width, height = round(image.width * share), round(image.height * share)
    left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    frame = image.crop((left, top, left + width, top + height)).resize(SIZE, Image.BILINEAR)
    return ImageEnhance.Brightness(frame).enhance(rng.uniform(0.8, 1.2))


def save_frame(image, path: Path, taken: datetime) -> None:
    from PIL import ExifTags, Image

    exif = Image.Exif()
    text = taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[ExifTags.Base.DateTime] = text
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=85, exif=exif)


def make_season(folder: Path, frames: int, seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """`frames` frames in bursts under `folder`: the bursts made (camera, start, frames, kind), and each frame's kind
    (by its path under `folder`)."""
    from PIL import Image

    rng = random.Random(seed)
    root = shared_frames()
    sources = {"blank": [Image.open(root / "speciesnet-test" / name).convert("RGB") for name in BLANKS],
               "animal": [Image.open(path).convert("RGB") for path in animal_frames(root)]}
    clocks = {camera: START + timedelta(seconds=rng.randint(0, 6 * 3600)) for camera in CAMERAS}  # EXIF: whole seconds
    numbers = dict.fromkeys(CAMERAS, 0)
    bursts, made, kinds = [], 0, {}
    while made < frames:
        size = min(rng.randint(*BURST), frames - made)
        kind = "blank" if rng.random() < BLANK_SHARE else "animal"
        folder_name = rng.choice(CAMERAS)
        scene = rng.choice(sources[kind])
        taken = clocks[folder_name]
        for _ in range(size):
            numbers[folder_name] += 1
            relative = f"{folder_name}/RCNX{numbers[folder_name]:04d}.JPG"
            save_frame(jittered(scene, rng), folder / relative, taken)
            kinds[relative] = kind
            taken += timedelta(seconds=rng.randint(1, 5))
        bursts.append({"camera": folder_name.split("/")[0], "start": clocks[folder_name], "frames": size, "kind": kind})
        # The camera's next burst comes hours later; a camera split over overflow folders shares one clock.
        following = taken + timedelta(seconds=rng.randint(3600, 12 * 3600))
        for other in CAMERAS:
            if other.split("/")[0] == folder_name.split("/")[0]:
                clocks[other] = max(clocks[other], following)
        made += size
    return bursts, kinds


def make_animals(folder: Path, count: int) -> None:
    """`count` animals3 photos scaled to SIZE (the season's frames' size), distinct files."""
    from PIL import Image

    photos = sorted(animals3().rglob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.open(photos[(i * 7) % len(photos)]).convert("RGB").resize(SIZE, Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        (folder / f"IMG_{i:05d}.jpg").write_bytes(buffer.getvalue() + i.to_bytes(4, "little"))


def real_frames(folder: Path) -> dict[str, str]:
    """The shared real frames copied under `folder`: {relative path: the kind it is}."""
    root = shared_frames()
    expected = {}
    for path in sorted((root / "speciesnet-test").glob("*.jpg")):
        if "truncated" in path.name:
            continue  # a damaged copy: no kind to judge (its answer is an error)
        kind = "blank" if path.name.startswith("blank") else {"human.jpg": "person", "vehicle.jpg": "vehicle"}.get(
            path.name, "animal")
        expected[f"speciesnet-test/{path.name}"] = kind
    for path in sorted((root / "ena24").glob("*.jpg")):
        expected[f"ena24/{path.name}"] = "animal"
    for path in sorted((root / "camtrap-dp-example" / "media").glob("*.JPG")):
        expected[f"heron/{path.name}"] = "animal"
    sources = {"speciesnet-test": root / "speciesnet-test", "ena24": root / "ena24",
               "heron": root / "camtrap-dp-example" / "media"}
    for relative in expected:
        part, name = relative.split("/")
        (folder / part).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[part] / name, folder / relative)
    return expected


def predict(model: Path, folder: Path, out: Path, env: dict, camera_traps: bool = True) -> dict:
    """One `zoolens predict MODEL DIR --out R.parquet [--camera-traps]` in its own process."""
    command = [sys.executable, "-c", _PEAK_WRAPPER, "predict", str(model), str(folder), "--out", str(out)]
    command += ["--camera-traps"] if camera_traps else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"predict failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK ")][-1].split()
    photos = int(re.search(r"predicted (\d+) photos", done.stderr).group(1))
    reported = re.findall(r"done in [\d.]+ s, ([\d.]+) img/s", done.stderr)
    return {"photos": photos, "seconds": round(seconds, 1), "photos_per_s": round(photos / seconds, 2),
            "photos_per_s_zoolens_reports": float(reported[-1]) if reported else None,
            "peak_rss_mb": {"main": round(int(peak[1]) / 1024), "largest_worker": round(int(peak[2]) / 1024)}}


def kinds_of(results: Path, folder: Path) -> dict[str, str | None]:
    import pyarrow.parquet as pq

    table = pq.read_table(results, columns=["path", "kind"]).to_pylist()
    return {Path(row["path"]).resolve().relative_to(folder.resolve()).as_posix(): row["kind"] for row in table}


def accuracy(kinds: dict[str, str | None], expected: dict[str, str], listed: int = 12) -> dict:
    """Per expected kind: frames, right, and which were wrong (path: the kind given; the first `listed`)."""
    table = {}
    for kind in ("blank", "animal", "person", "vehicle"):
        mine = [path for path, want in expected.items() if want == kind]
        wrong = {path: kinds.get(path) for path in mine if kinds.get(path) != kind}
        table[kind] = {"frames": len(mine), "right": len(mine) - len(wrong),
                       "wrong": dict(list(wrong.items())[:listed])}
    return table


def events_against_bursts(model_env: dict, results: Path, bursts: list[dict], work: Path) -> dict:
    """`zoolens results R.parquet --events E.csv`, and whether its events are the bursts made, exactly."""
    events_csv = work / "events.csv"
    done = subprocess.run([sys.executable, "-m", "zoolens.cli", "results", str(results), "--events", str(events_csv)],
                          capture_output=True, text=True, env=model_env)
    if done.returncode != 0:
        raise SystemExit(f"results failed: {done.stderr[-2000:]}")
    with open(events_csv, newline="") as handle:
        events = list(csv.DictReader(handle))
    made = sorted((b["camera"], b["start"].isoformat(), b["frames"]) for b in bursts)
    found = sorted((e["camera"], datetime.fromisoformat(e["start"]).replace(tzinfo=None).isoformat(), int(e["frames"]))
                   for e in events)
    kinds = {}
    for burst in bursts:
        kinds.setdefault(burst["kind"], 0)
        kinds[burst["kind"]] += 1
    return {"bursts": len(made), "events": len(found), "exactly_the_bursts": made == found,
            "bursts_by_kind": kinds, "events_by_kind": _count(e["kind"] for e in events),
            "bursts_not_events": [m for m in made if m not in found][:5],
            "events_not_bursts": [f for f in found if f not in made][:5]}


def events_by_camera(env: dict, results: Path, work: Path) -> dict:
    """The kinds of the events `zoolens results --events` forms, camera by camera (the heron burst is one event)."""
    events_csv = work / "real-events.csv"
    subprocess.run([sys.executable, "-m", "zoolens.cli", "results", str(results), "--events", str(events_csv)],
                   capture_output=True, text=True, env=env, check=True)
    with open(events_csv, newline="") as handle:
        found: dict = {}
        for event in csv.DictReader(handle):
            found.setdefault(event["camera"], []).append(f"{event['kind']} ({event['frames']} frames)")
    return {camera: _count(kinds) for camera, kinds in found.items()}


def _count(values) -> dict:
    counted: dict = {}
    for value in values:
        counted[value] = counted.get(value, 0) + 1
    return counted


def ratio(season: dict, animals: dict, key: str) -> float | None:
    if not season.get(key) or not animals.get(key):
        return None
    return round(season[key] / animals[key], 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200, help="frames in the season (default 200)")
    parser.add_argument("--model", type=Path, help="a model folder (default: one trained on animals3 here)")
    args = parser.parse_args()
    cache = fresh_cache()
    os.environ["ZOOLENS_CACHE"] = cache
    env = {**os.environ, "ZOOLENS_CACHE": cache}
    work = Path(tempfile.mkdtemp(prefix="zoolens-camera-trap-bench-"))
    started = time.perf_counter()
    try:
        model = args.model or demo_model(cache)
        model_s = time.perf_counter() - started
        started = time.perf_counter()
        expected = real_frames(work / "real")
        bursts, frame_kinds = make_season(work / "season", args.frames)
        make_season(work / "season2", 2 * args.frames, seed=1)
        make_animals(work / "animals", args.frames)
        generated_s = time.perf_counter() - started
        # The real frames first: this run also exports the detector into the fresh cache, outside the timed runs.
        real = predict(model, work / "real", work / "real.parquet", env)
        real_kinds = kinds_of(work / "real.parquet", work / "real")
        turned_away = {"season": predict(model, work / "season", work / "plain-season.parquet", env, False),
                       "animals": predict(model, work / "animals", work / "plain-animals.parquet", env, False)}
        season = predict(model, work / "season", work / "season.parquet", env)
        animals = predict(model, work / "animals", work / "animals.parquet", env)
        season2 = predict(model, work / "season2", work / "season2.parquet", env)
        season_kinds = kinds_of(work / "season.parquet", work / "season")
        print(json.dumps({
            "benchmark": "camera_trap",
            "model": str(args.model) if args.model else "mobilenet_v2 frozen, animals3 (knows none of these species)",
            "cpu_count": os.cpu_count(),
            "frames": args.frames,
            "frame_size": list(SIZE),
            "model_s": round(model_s, 1),
            "generate_s": round(generated_s, 1),
            "camera_traps": {
                "season": season, "animal_photos": animals,
                "ratio": ratio(season, animals, "photos_per_s"),
                "ratio_zoolens_reports": ratio(season, animals, "photos_per_s_zoolens_reports"),
                "season_2n": season2,
                "peak_rss_mb_n_vs_2n": {"main": [season["peak_rss_mb"]["main"], season2["peak_rss_mb"]["main"]],
                                        "largest_worker": [season["peak_rss_mb"]["largest_worker"],
                                                           season2["peak_rss_mb"]["largest_worker"]]},
            },
            "turned_away": {**turned_away,
                            "ratio": ratio(turned_away["season"], turned_away["animals"], "photos_per_s"),
                            "ratio_zoolens_reports": ratio(turned_away["season"], turned_away["animals"],
                                                           "photos_per_s_zoolens_reports")},
            "season_accuracy": {kind: {key: value for key, value in row.items() if key != "wrong" or value}
                                for kind, row in accuracy(season_kinds, frame_kinds, listed=5).items()
                                if row["frames"]},
            "events": events_against_bursts(env, work / "season.parquet", bursts, work),
            "real_frames": {"run": real, "accuracy": accuracy(real_kinds, expected),
                            "events": events_by_camera(env, work / "real.parquet", work)},
        }, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
