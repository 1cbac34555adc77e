"""Finding wrong labels, measured: 5 % of a dataset's training labels flipped at random (each to another class drawn
at random, written as a corrections file, never on disk), then `find_data_issues` on the noisy labels, then frozen
MobileNetV2 models judged on the test part's own labels: on the clean labels, on the noisy ones, on the noisy ones
with every suggestion for a training photo accepted (relabelled to the suggested class), and with those photos left
out instead. Repeated for NOISE_SEEDS draws of the flipped photos; prints one JSON object per dataset (the mean,
and each draw).

    .venv/bin/python benchmarks/label_noise.py [animals3] [imagewoof]

- recall and precision "at depth": among the first N flags of training photos (N: how many were flipped), the share
  of the flipped photos found and the share of those flags that are flipped photos (with N flags for N flipped
  photos, the two are the same number);
- recall and precision of every flag (what `zoolens data issues` lists);
- recovery: (accuracy corrected - accuracy noisy) / (accuracy clean - accuracy noisy) over the draws' means, the
  share of the accuracy lost to the noise that accepting the suggestions wins back. One draw alone says little: the
  noise costs about a point, and one retraining moves test accuracy by a few tenths of one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FLIPPED_SHARE = 0.05
NOISE_SEEDS = (0, 1, 2, 3, 4)
RATIOS = "70/10/20"  # animals3 (Imagewoof comes split: its val/ is the test part)


def flipped_training_labels(data: Path, seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    """FLIPPED_SHARE of the training part's photos, each with a wrong label; and every photo's true label."""
    from zoolens.data.corrections import relative_key
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_folder

    manifest = split_folder(scan_folder(data), RATIOS, 0)
    truth = {relative_key(sample.path, manifest.root): sample.label for sample, _ in manifest.rows}
    train = sorted(relative_key(sample.path, manifest.root) for sample in manifest.part("train"))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(train), size=round(FLIPPED_SHARE * len(train)), replace=False)
    flips = {}
    for index in sorted(chosen):
        path = train[index]
        others = [name for name in manifest.classes if name != truth[path]]
        flips[path] = others[int(rng.integers(len(others)))]
    return flips, truth


def write_relabels(path: Path, relabels: dict[str, str], excluded: tuple[str, ...] = ()) -> Path:
    from zoolens.data.corrections import write_corrections

    return write_corrections(path, [{"path": photo, "action": "relabel", "label": label}
                                    for photo, label in sorted(relabels.items()) if photo not in excluded]
                             + [{"path": photo, "action": "exclude", "label": ""} for photo in sorted(excluded)])


def test_accuracy(data: Path, corrections: Path | None) -> float:
    import zoolens

    model = zoolens.train(data, None, corrections=corrections, ratios=RATIOS, progress=False)
    return float(model.evaluation.accuracy)


def one_draw(data: Path, seed: int, clean: float) -> dict:
    from zoolens.evaluation.data_issues import find_data_issues

    flips, truth = flipped_training_labels(data, seed)
    with tempfile.TemporaryDirectory(prefix="zoolens-noise-") as scratch:
        noisy = write_relabels(Path(scratch) / "noisy.csv", flips)
        started = time.perf_counter()
        issues = find_data_issues(data, ratios=RATIOS, corrections=noisy, progress=False)
        seconds = time.perf_counter() - started
        train_flags = [row for row in issues.label_issues if row["part"] == "train"]
        depth = len(flips)
        at_depth = sum(row["path"] in flips for row in train_flags[:depth])
        every = sum(row["path"] in flips for row in train_flags)
        # Accepting a suggestion replaces the noisy label (or relabels a photo that was not flipped).
        accepted = {**flips, **{row["path"]: row["suggested"] for row in train_flags}}
        relabelled = write_relabels(Path(scratch) / "relabelled.csv",
                                    {path: label for path, label in accepted.items() if label != truth[path]})
        excluded = write_relabels(Path(scratch) / "excluded.csv", flips, tuple(row["path"] for row in train_flags))
        accuracy = {"noisy": test_accuracy(data, noisy), "relabelled": test_accuracy(data, relabelled),
                    "excluded": test_accuracy(data, excluded)}
    return {
        "seed": seed, "photos": len(issues.paths), "flipped": depth, "recall_at_depth": round(at_depth / depth, 3),
        "train_flags": len(train_flags), "recall_all_flags": round(every / depth, 3),
        "precision_all_flags": round(every / max(len(train_flags), 1), 3),
        "flags_outside_train": len(issues.label_issues) - len(train_flags),
        "suggestions_right": round(sum(row["suggested"] == truth[row["path"]] for row in train_flags
                                       if row["path"] in flips) / max(every, 1), 3),
        "accuracy": {"clean": round(clean, 4), **{k: round(v, 4) for k, v in accuracy.items()}},
        "issues_seconds": round(seconds, 1),
    }


def measure(name: str) -> dict:
    from zoolens.data.shared import ensure_shared_dataset

    data = ensure_shared_dataset(name)
    clean = test_accuracy(data, None)  # the same for every draw: training is seeded
    draws = [one_draw(data, seed, clean) for seed in NOISE_SEEDS]
    mean = {key: float(np.mean([draw["accuracy"][key] for draw in draws]))
            for key in ("clean", "noisy", "relabelled", "excluded")}
    lost = mean["clean"] - mean["noisy"]
    return {
        "benchmark": "label_noise", "dataset": name, "draws": len(draws),
        "recall_at_depth": round(float(np.mean([d["recall_at_depth"] for d in draws])), 3),
        "precision_at_depth": round(float(np.mean([d["recall_at_depth"] for d in draws])), 3),
        "precision_all_flags": round(float(np.mean([d["precision_all_flags"] for d in draws])), 3),
        "accuracy": {key: round(value, 4) for key, value in mean.items()},
        "points_lost_to_noise": round(100 * lost, 2),
        "recovery_relabelled": round((mean["relabelled"] - mean["noisy"]) / lost, 2) if lost > 0 else None,
        "recovery_excluded": round((mean["excluded"] - mean["noisy"]) / lost, 2) if lost > 0 else None,
        "each_draw": draws,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["animals3", "imagewoof"])
    for name in parser.parse_args().datasets:
        print(json.dumps(measure(name)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
