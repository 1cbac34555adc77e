"""The accuracies the README states for a frozen backbone (MobileNetV2 by default) + dense head, each with its
reference: scikit-learn's logistic regression on the same cached features and the same split. Prints one JSON
object per dataset and backbone.

    .venv/bin/python benchmarks/accuracy.py [animals3] [imagewoof] [--backbone NAME ...]

animals3: the default 70/10/20 split (`zoolens train PHOTOS`); Imagewoof: its own train -> val split, val as
the test part. The feature cache (ZOOLENS_CACHE, default ~/.cache/zoolens) is used and filled: a cold run
extracts about 3000 (animals3) or 12 000 (Imagewoof) photos' features first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3  # noqa: E402


def imagewoof() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("imagewoof")


DATASETS = {"animals3": animals3, "imagewoof": imagewoof}


def logistic_regression_accuracy(model, split_csv: Path, root: Path) -> float:
    """scikit-learn's LogisticRegression on the model's own cached frozen features, trained on the train and
    validation parts of its split (it has no early stopping to feed), scored on the test part."""
    import csv

    from sklearn.linear_model import LogisticRegression

    with open(split_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts = {}
    for name in ("train", "val", "test"):
        chosen = [row for row in rows if row["split"] == name]
        found = model.features_of_paths([root / row["path"] for row in chosen])
        labels = np.array([model.classes.index(row["label"]) for row in chosen])
        parts[name] = (found.features[found.usable], labels[found.usable])
    x = np.concatenate([parts["train"][0], parts["val"][0]])
    y = np.concatenate([parts["train"][1], parts["val"][1]])
    classifier = LogisticRegression(max_iter=2000).fit(x, y)
    return float(classifier.score(*parts["test"]))


def measure(name: str, backbone: str) -> dict:
    import zoolens

    root = DATASETS[name]()
    with tempfile.TemporaryDirectory(prefix="zoolens-accuracy-") as scratch:
        started = time.perf_counter()
        model = zoolens.train(root, Path(scratch) / "model", progress=False, backbone=backbone)
        seconds = time.perf_counter() - started
        reference = logistic_regression_accuracy(model, Path(scratch) / "model" / "split.csv", Path(root))
    return {"benchmark": "accuracy", "dataset": name, "backbone": backbone,
            "input_size": model.network.backbone.info.preprocessing.input_size, "strategy": "frozen",
            "test_photos": len(model.evaluation.y_true), "test_accuracy": round(model.evaluation.accuracy, 4),
            "logistic_regression_test_accuracy": round(reference, 4), "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--backbone", action="append", help="repeat for several (default: mobilenet_v2)")
    args = parser.parse_args()
    for name in args.datasets:
        for backbone in args.backbone or ["mobilenet_v2"]:
            print(json.dumps(measure(name, backbone)), flush=True)


if __name__ == "__main__":
    main()
