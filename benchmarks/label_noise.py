"""Finding wrong labels, measured: 5 % of a dataset's training labels flipped at random (each to another class drawn
at random, written into the split manifest's label column, never on disk), then `find_data_issues` on the noisy
labels, then frozen MobileNetV2 models judged on the test part's own labels: on the clean labels, on the noisy ones,
on the noisy ones with every suggestion for a training photo accepted (relabelled to the suggested class), with
those photos left out instead, and with the suggested corrections (`suggested_corrections.csv` of `zoolens data
issues`: training photos in doubt relabelled where the heads are sure, left out where not). The suggested
corrections are also applied to the clean labels, to measure what they cost a dataset without flipped labels.
Every accuracy is the mean of TRAINING_SEEDS models on one split. Repeated for NOISE_SEEDS draws of the flipped
photos; prints one JSON object per dataset (the mean, and each draw).

    .venv/bin/python benchmarks/label_noise.py [animals3] [imagewoof] [--sure-relabel P] [--training-seeds N]

(`--sure-relabel`: the suggested corrections' threshold to relabel rather than leave out, instead of zoolens's own
`SURE_RELABEL`, to measure another; `--training-seeds N`: each accuracy the mean of N models instead of 3, for
less noise.)

- recall and precision "at depth": among the first N flags of training photos (N: how many were flipped), the share
  of the flipped photos found and the share of those flags that are flipped photos (with N flags for N flipped
  photos, the two are the same number);
- recall and precision of every flag (what `zoolens data issues` lists);
- recovery: (accuracy corrected - accuracy noisy) / (accuracy clean - accuracy noisy) over the draws' means, the
  share of the accuracy lost to the noise that a remedy wins back. One draw alone says little: the noise costs under
  a point, and one retraining moves test accuracy by a few tenths of one.
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


def noisy_manifest(manifest, flips: dict[str, str], path: Path) -> Path:
    """The split as it was, with the flipped photos under their wrong labels: the labels the dataset now has."""
    from zoolens.data.corrections import relative_key
    from zoolens.data.folders import Sample
    from zoolens.data.split import Manifest, write_manifest

    rows = [(Sample(sample.path, flips.get(relative_key(sample.path, manifest.root), sample.label)), role)
            for sample, role in manifest.rows]
    return write_manifest(Manifest(root=manifest.root, classes=manifest.classes, rows=rows), path)


def test_accuracy(data: Path, split: Path, corrections: Path | None = None) -> float:
    """The mean test accuracy of TRAINING_SEEDS models (one split: only the heads' start and shuffling differ)."""
    import zoolens

    return float(np.mean([zoolens.train(data, None, split_file=split, corrections=corrections, seed=seed,
                                        progress=False).evaluation.accuracy for seed in TRAINING_SEEDS]))


def suggested(data: Path, split: Path, path: Path):
    """`find_data_issues` on the split's labels, and its suggested corrections written to `path`."""
    from zoolens.data.corrections import write_corrections
    from zoolens.evaluation.data_issues import find_data_issues, suggested_corrections

    started = time.perf_counter()
    issues = find_data_issues(data, split_file=split, progress=False)
    seconds = time.perf_counter() - started
    return issues, write_corrections(path, suggested_corrections(issues)), seconds


def one_draw(data: Path, manifest, seed: int, clean: float) -> dict:
    from zoolens.data.corrections import read_corrections

    flips, truth = flipped_training_labels(manifest, seed)
    with tempfile.TemporaryDirectory(prefix="zoolens-noise-") as scratch:
        split = noisy_manifest(manifest, flips, Path(scratch) / "noisy.csv")
        issues, fixes, seconds = suggested(data, split, Path(scratch) / "suggested.csv")
        train_flags = [row for row in issues.label_issues if row.part == "train"]
        depth = len(flips)
        at_depth = sum(row.path in flips for row in train_flags[:depth])
        every = sum(row.path in flips for row in train_flags)
        relabelled = write_relabels(Path(scratch) / "relabelled.csv",
                                    {row.path: row.suggested for row in train_flags})
        excluded = write_relabels(Path(scratch) / "excluded.csv", {}, tuple(row.path for row in train_flags))
        accuracy = {name: test_accuracy(data, split, corrections) for name, corrections in (
            ("noisy", None), ("relabelled", relabelled), ("excluded", excluded), ("suggested_corrections", fixes))}
        print(f"draw {seed}: {accuracy}", file=sys.stderr, flush=True)
        decided = read_corrections(fixes)
    return {
        "seed": seed, "photos": len(issues.paths), "flipped": depth, "recall_at_depth": round(at_depth / depth, 3),
        "train_flags": len(train_flags), "recall_all_flags": round(every / depth, 3),
        "precision_all_flags": round(every / max(len(train_flags), 1), 3),
        "flags_outside_train": len(issues.label_issues) - len(train_flags),
        "suggestions_right": round(sum(row.suggested == truth[row.path] for row in train_flags
                                       if row.path in flips) / max(every, 1), 3),
        "suggested_corrections": {
            "relabelled": len(decided.relabel), "left_out": len(decided.exclude),
            "flipped_relabelled_right": sum(truth[path] == label for path, label in decided.relabel.items()),
            "unflipped_relabelled_wrong": sum(path not in flips for path in decided.relabel),
            "flipped_left_out": len(decided.exclude & set(flips)),
            "flipped_untouched": len(set(flips) - decided.exclude - set(decided.relabel))},
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
        clean = test_accuracy(data, split)  # the same for every draw: training is seeded
        _, fixes, _ = suggested(data, split, Path(scratch) / "suggested.csv")
        clean_suggested = test_accuracy(data, split, fixes)
        draws = [one_draw(data, manifest, seed, clean) for seed in NOISE_SEEDS]
    remedies = ("relabelled", "excluded", "suggested_corrections")
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
        "clean_labels_with_suggested_corrections": round(clean_suggested, 4),
        "each_draw": draws,
    }


def main() -> None:
    global TRAINING_SEEDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["animals3", "imagewoof"])
    parser.add_argument("--sure-relabel", type=float, help="the suggested corrections' threshold to relabel")
    parser.add_argument("--training-seeds", type=int, default=len(TRAINING_SEEDS),
                        help="how many models each accuracy is the mean of")
    args = parser.parse_args()
    TRAINING_SEEDS = tuple(range(args.training_seeds))
    from zoolens.evaluation import data_issues

    if args.sure_relabel is not None:
        data_issues.SURE_RELABEL = args.sure_relabel
    for name in args.datasets:
        print(json.dumps({**measure(name), "sure_relabel": data_issues.SURE_RELABEL,
                          "training_seeds": len(TRAINING_SEEDS)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
