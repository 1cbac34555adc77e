"""How much a random split inflates test accuracy on camera-trap bursts, against a split grouped by event (issue 31,
item 6). A synthetic burst set from the shared photos: each photo becomes a burst of 3 to 5 near-copies (a few
per cent cropped off each side at random, brightness within 10 %, re-encoded), their EXIF DateTimeOriginal one to
two seconds apart and bursts fifteen minutes apart, as a camera trap's frames are; saved as class folders. Then
frozen MobileNetV2 models with the default options (`zoolens.train`), on the same photos with the same seeds: with
the default split of class folders (photo by photo: the frames of a burst land in any part) and with
`group_by="event"` (`zoolens train --group-by event`: a burst in one part). Each accuracy is the mean over SEEDS
(each seed another split and another head). Prints one JSON object per dataset; both datasets take about 8 minutes
on a 2-core machine (animals3 1.3, Imagewoof's training part 6.5).

    .venv/bin/python benchmarks/grouped_split.py [animals3] [imagewoof] [--bursts-per-class N] [--seeds N]

- `test_accuracy`: on each split's own test part (different photos for the two splits, as a user would get them);
- `test_photos_with_a_frame_of_their_burst_in_train`: the share of test photos whose near-copy was trained on;
- `inflation_points`: random minus grouped, in points of accuracy.
The features are extracted once (a fresh feature cache for this run) and serve every model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from common import fresh_cache

BURST_FRAMES = (3, 5)  # frames per burst, drawn uniformly
FRAME_GAP_S = (1, 2)
BURST_GAP = timedelta(minutes=15)
START = datetime(2022, 6, 1, 5, 0, 0)
LONGEST_SIDE = 400  # the network sees 224 px; smaller files extract faster
SEEDS = (0, 1, 2, 3, 4)


def near_copy(image, rng: np.random.Generator):
    from PIL import ImageEnhance

    w, h = image.size
    left, top, right, bottom = (rng.uniform(0, 0.06) for _ in range(4))
    frame = image.crop((int(w * left), int(h * top), int(w * (1 - right)), int(h * (1 - bottom))))
    return ImageEnhance.Brightness(frame).enhance(rng.uniform(0.9, 1.1))


def burst_set(source: Path, out: Path, per_class: int, seed: int = 0) -> dict:
    """Class folders of bursts under `out`; each frame's burst, by construction."""
    from PIL import Image

    from zoolens.data.folders import scan_folder

    rng = np.random.default_rng(seed)
    folder = scan_folder(source)
    train_part = folder.parts
    by_label: dict[str, list[Path]] = {}
    for sample in sorted(folder.samples, key=lambda s: str(s.path)):
        if train_part is None or train_part[sample.path] == "train":
            by_label.setdefault(sample.label, []).append(sample.path)
    burst_of, burst, when = {}, 0, START
    for label, photos in sorted(by_label.items()):
        for index in rng.choice(len(photos), size=min(per_class, len(photos)), replace=False):
            with Image.open(photos[index]) as opened:
                image = opened.convert("RGB")
            image.thumbnail((LONGEST_SIDE, LONGEST_SIDE))
            for k in range(int(rng.integers(BURST_FRAMES[0], BURST_FRAMES[1] + 1))):
                exif = Image.Exif()
                exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
                path = out / label / f"burst{burst:04d}-{k}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                near_copy(image, rng).save(path, quality=90, exif=exif)
                burst_of[path] = burst
                when += timedelta(seconds=int(rng.integers(FRAME_GAP_S[0], FRAME_GAP_S[1] + 1)))
            burst += 1
            when += BURST_GAP
    return burst_of


def one_model(data: Path, burst_of: dict, seed: int, group_by: str | None) -> dict:
    import zoolens
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_folder

    model = zoolens.train(data, None, seed=seed, group_by=group_by, progress=False)
    manifest = split_folder(scan_folder(data), seed=seed, group_by=group_by)  # the split train() made
    trained = {burst_of[s.path] for s in manifest.part("train")}
    test = manifest.part("test")
    return {"seed": seed, "test_accuracy": round(float(model.evaluation.accuracy), 4), "test_photos": len(test),
            "test_bursts": len({burst_of[s.path] for s in test}),
            "leaked": round(sum(burst_of[s.path] in trained for s in test) / len(test), 3)}


def summary(runs: list[dict]) -> dict:
    return {"test_accuracy": round(float(np.mean([r["test_accuracy"] for r in runs])), 4),
            "test_accuracy_std": round(float(np.std([r["test_accuracy"] for r in runs])), 4),
            "test_photos_with_a_frame_of_their_burst_in_train": round(float(np.mean([r["leaked"] for r in runs])), 3),
            "each_seed": runs}


def measure(name: str, per_class: int) -> dict:
    from zoolens.data.shared import ensure_shared_dataset

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoolens-bursts-") as scratch:
        data = Path(scratch) / name
        burst_of = burst_set(ensure_shared_dataset(name), data, per_class)
        made = time.perf_counter()
        first = one_model(data, burst_of, SEEDS[0], None)  # the features, extracted once
        extracted = time.perf_counter()
        random_runs = [first] + [one_model(data, burst_of, seed, None) for seed in SEEDS[1:]]
        grouped_runs = [one_model(data, burst_of, seed, "event") for seed in SEEDS]
    random, grouped = summary(random_runs), summary(grouped_runs)
    return {
        "benchmark": "grouped_split", "dataset": name, "classes": len({p.parent.name for p in burst_of}),
        "bursts": len(set(burst_of.values())), "photos": len(burst_of),
        "frames_per_burst": f"{BURST_FRAMES[0]}-{BURST_FRAMES[1]}", "ratios": "70/10/20", "seeds": len(SEEDS),
        "random_split": random, "grouped_by_event": grouped,
        "inflation_points": round(100 * (random["test_accuracy"] - grouped["test_accuracy"]), 2),
        "seconds": {"making_bursts": round(made - started, 1), "first_model_with_features": round(extracted - made, 1),
                    "total": round(time.perf_counter() - started, 1)},
    }


def main() -> None:
    global SEEDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["animals3", "imagewoof"])
    parser.add_argument("--bursts-per-class", type=int, default=60, help="source photos (bursts) per class")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="splits (and heads) each accuracy averages")
    args = parser.parse_args()
    SEEDS = tuple(range(args.seeds))
    for name in args.datasets:
        print(json.dumps({**measure(name, args.bursts_per_class), "bursts_per_class": args.bursts_per_class}),
              flush=True)


if __name__ == "__main__":
    os.environ.setdefault("ZOOLENS_CACHE", fresh_cache())  # features of these synthetic frames are not kept
    sys.exit(main())
