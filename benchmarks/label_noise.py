"""Finding wrong labels, measured: 5 % of a dataset's training labels flipped at random (each to another class drawn
at random, written as a corrections file, never on disk), then `find_data_issues` on the noisy labels, then frozen
MobileNetV2 models judged on the test part's own labels: on the clean labels, on the noisy ones, on the noisy ones
with every suggestion for a training photo accepted (relabelled to the suggested class), with those photos left
out instead, and with each relabelled where the heads are sure of the suggestion (SURE) and left out where not.
Every accuracy is the mean of TRAINING_SEEDS models on one split. Repeated for NOISE_SEEDS draws of the flipped
photos; prints one JSON object per dataset (the mean, and each draw). A second round of the last (`data issues`
again with the first round's corrections) was measured to win back nothing more (animals3 71 %, Imagewoof 96 %).

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
TRAINING_SEEDS = (0, 1, 2)  # each accuracy is the mean of models trained with these seeds, on one split
SURE = 0.5  # "sure" remedy: relabel a flag whose suggestion has at least this out-of-fold probability, else exclude
RATIOS = "70/10/20"  # animals3 (Imagewoof comes split: its val/ is the test part)


def the_split(data: Path):
    from zoolens.data.folders import scan_folder
    from zoolens.data.split import split_folder

    return split_folder(scan_folder(data), RATIOS, 0)


def flipped_training_labels(manifest, seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    """FLIPPED_SHARE of the training part's photos, each with a wrong label; and every photo's true label."""
    from zoolens.data.corrections import relative_key

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


def test_accuracy(data: Path, split: Path, corrections: Path | None) -> float:
    """The mean test accuracy of TRAINING_SEEDS models (one split: only the heads' start and shuffling differ)."""
    import zoolens

    return float(np.mean([zoolens.train(data, None, split_file=split, corrections=corrections, seed=seed,
                                        progress=False).evaluation.accuracy for seed in TRAINING_SEEDS]))


def sure_remedy(issues, flags: list[dict]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Each flag relabelled to its suggestion when the out-of-fold heads are SURE of it, otherwise excluded."""
    probability = {path: row for path, row in zip(issues.paths, issues.probabilities)}
    index = {name: i for i, name in enumerate(issues.classes)}
    sure = {row["path"]: row["suggested"] for row in flags
            if probability[row["path"]][index[row["suggested"]]] >= SURE}
    return sure, tuple(row["path"] for row in flags if row["path"] not in sure)


def one_draw(data: Path, manifest, split: Path, seed: int, clean: float) -> dict:
    from zoolens.evaluation.data_issues import find_data_issues

    flips, truth = flipped_training_labels(manifest, seed)
    with tempfile.TemporaryDirectory(prefix="zoolens-noise-") as scratch:
        noisy = write_relabels(Path(scratch) / "noisy.csv", flips)
        started = time.perf_counter()
        issues = find_data_issues(data, split_file=split, corrections=noisy, progress=False)
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
        sure, unsure = sure_remedy(issues, train_flags)
        sure_labels = {**flips, **sure}
        relabelled_or_excluded = write_relabels(
            Path(scratch) / "sure.csv", {path: label for path, label in sure_labels.items() if label != truth[path]},
            unsure)
        accuracy = {name: test_accuracy(data, split, corrections) for name, corrections in (
            ("noisy", noisy), ("relabelled", relabelled), ("excluded", excluded),
            ("sure_relabelled_else_excluded", relabelled_or_excluded))}
        print(f"draw {seed}: {accuracy}", file=sys.stderr, flush=True)
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
    from zoolens.data.split import write_manifest

    data = ensure_shared_dataset(name)
    manifest = the_split(data)
    with tempfile.TemporaryDirectory(prefix="zoolens-noise-") as scratch:
        split = write_manifest(manifest, Path(scratch) / "split.csv")
        clean = test_accuracy(data, split, None)  # the same for every draw: training is seeded
        draws = [one_draw(data, manifest, split, seed, clean) for seed in NOISE_SEEDS]
    remedies = ("relabelled", "excluded", "sure_relabelled_else_excluded")
    mean = {key: float(np.mean([draw["accuracy"][key] for draw in draws])) for key in ("clean", "noisy", *remedies)}
    lost = mean["clean"] - mean["noisy"]
    return {
        "benchmark": "label_noise", "dataset": name, "draws": len(draws),
        "recall_at_depth": round(float(np.mean([d["recall_at_depth"] for d in draws])), 3),
        "precision_at_depth": round(float(np.mean([d["recall_at_depth"] for d in draws])), 3),
        "precision_all_flags": round(float(np.mean([d["precision_all_flags"] for d in draws])), 3),
        "accuracy": {key: round(value, 4) for key, value in mean.items()},
        "points_lost_to_noise": round(100 * lost, 2),
        "recovery": {key: round((mean[key] - mean["noisy"]) / lost, 2) if lost > 0 else None for key in remedies},
        "each_draw": draws,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["animals3", "imagewoof"])
    for name in parser.parse_args().datasets:
        print(json.dumps(measure(name)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
