"""The accuracies the README states for a frozen backbone (MobileNetV2 by default) + dense head, each with its
reference: scikit-learn's logistic regression on the same cached features and the same split. Prints one JSON
object per dataset and backbone.

    .venv/bin/python benchmarks/accuracy.py [animals3] [imagewoof] [--backbone NAME ...] [--views mirror[,wide...]]
        [--preset best] [--ensemble a+b]

--backbone takes an ensemble's name too (mobilenet_v2+efficientnet_lite2: its members side by side, as `zoolens
train --backbone` makes it); --preset best adds a row for `zoolens train --preset best` (alone unless --backbone is
given too: `--backbone mobilenet_v2 --preset best` measures the default beside it).

--views: test-time views (`runtime.views.ViewsExtractor`: the features of the photo and of each view named,
averaged), measured in the same run against plain features on the same split: the head `train` fitted on plain
features, tested on averaged ones ("train plain, test averaged"), and a head fitted the same way (train's head
settings) on averaged features ("train averaged, test averaged"), beside one refitted so on plain features. The
views' features are cached per view: the first run computes them (its seconds are the cost, printed), a second
computes nothing.

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


def measure(name: str, backbone: str | None, preset: str | None = None) -> dict:
    import zoolens

    root = DATASETS[name]()
    options = {"preset": preset} if preset else {"backbone": backbone}
    with tempfile.TemporaryDirectory(prefix="zoolens-accuracy-") as scratch:
        started = time.perf_counter()
        model = zoolens.train(root, Path(scratch) / "model", progress=False, **options)
        seconds = time.perf_counter() - started
        reference = logistic_regression_accuracy(model, Path(scratch) / "model" / "split.csv", Path(root))
    return {"benchmark": "accuracy", "dataset": name, **({"preset": preset} if preset else {}),
            "backbone": model.record.backbone.name,
            "input_size": model.preprocessing.input_size, "strategy": "frozen",
            "test_photos": len(model.evaluation.y_true), "test_accuracy": round(model.evaluation.accuracy, 4),
            "logistic_regression_test_accuracy": round(reference, 4), "train_seconds": round(seconds, 1)}


def part_rows(split_csv: Path) -> dict[str, list[dict]]:
    import csv

    with open(split_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: [row for row in rows if row["split"] == name] for name in ("train", "val", "test")}


def cold_plain_seconds(extractor, paths: list[Path]) -> float:
    """Seconds for the plain features of `paths` computed afresh (a feature cache of its own, the exported network
    shared), in this process: the views' cost is set against this."""
    import os

    from zoolens.runtime.features import cache_dir

    real = cache_dir()
    with tempfile.TemporaryDirectory(prefix="zoolens-cold-") as fresh:
        for kept in ("onnx", "kits"):
            if (real / kept).exists():
                os.symlink(real / kept, Path(fresh) / kept)
        before = os.environ.get("ZOOLENS_CACHE")
        os.environ["ZOOLENS_CACHE"] = fresh
        try:
            started = time.perf_counter()
            found = extractor.features_of_paths(paths)
            seconds = time.perf_counter() - started
        finally:
            if before is None:
                del os.environ["ZOOLENS_CACHE"]
            else:
                os.environ["ZOOLENS_CACHE"] = before
    assert found.computed == len(paths), "the cold run served cached features"
    return seconds


def measure_views(name: str, backbone: str, views: str) -> dict:
    import zoolens
    from zoolens.models.dense_head import fit_dense_head
    from zoolens.runtime.views import ViewsExtractor, views_of
    from zoolens.training.config import TrainConfig
    from zoolens.training.loop import head_settings

    root = Path(DATASETS[name]())
    with tempfile.TemporaryDirectory(prefix="zoolens-accuracy-") as scratch:
        model = zoolens.train(root, Path(scratch) / "model", progress=False, backbone=backbone)
        parts = part_rows(Path(scratch) / "model" / "split.csv")
    averaged = ViewsExtractor(model.extractor, views_of(views))
    plain, viewed, labels, cost = {}, {}, {}, {}
    for part in ("test", "train", "val"):  # the test part first: its seconds are the views' cost per photo
        paths = [root / row["path"] for row in parts[part]]
        labels[part] = np.array([model.classes.index(row["label"]) for row in parts[part]])
        plain[part] = model.extractor.features_of_paths(paths)
        started = time.perf_counter()
        viewed[part] = averaged.features_of_paths(paths)
        cost[part] = (time.perf_counter() - started, viewed[part].computed)
    usable = {part: plain[part].usable & viewed[part].usable for part in parts}
    x_plain = {part: plain[part].features[usable[part]] for part in parts}
    x_views = {part: viewed[part].features[usable[part]] for part in parts}
    y = {part: labels[part][usable[part]] for part in parts}
    settings = head_settings(TrainConfig(backbone=backbone))

    def accuracy(logits: np.ndarray) -> float:
        return round(float(np.mean(np.argmax(logits, axis=1) == y["test"])), 4)

    def refit(x: dict) -> object:
        return fit_dense_head(x["train"], y["train"], x["val"], y["val"], classes=len(model.classes),
                              settings=settings)[0]

    head_plain, head_views = refit(x_plain), refit(x_views)
    seconds, computed = cost["test"]
    plain_seconds = cold_plain_seconds(model.extractor, [root / row["path"] for row in parts["test"]])
    return {"benchmark": "accuracy_views", "dataset": name, "backbone": backbone, "views": list(averaged.views),
            "test_photos": int(usable["test"].sum()),
            "train_plain_test_plain": round(model.evaluation.accuracy, 4),
            "train_plain_test_averaged": accuracy(model.class_logits(x_views["test"])),
            "refit_plain_test_plain": accuracy(head_plain(x_plain["test"])),
            "refit_averaged_test_averaged": accuracy(head_views(x_views["test"])),
            "network_passes_per_photo": len(averaged.views),
            "test_views_seconds": round(seconds, 1), "test_photos_computed": computed,
            "test_photos_per_second": round(computed / seconds, 1) if computed else None,
            "test_plain_cold_seconds": round(plain_seconds, 1),
            "test_plain_photos_per_second": round(len(parts["test"]) / plain_seconds, 1),
            "all_parts_views_seconds": round(sum(s for s, _ in cost.values()), 1)}


def measure_ensemble(name: str, members: list[str]) -> dict:
    """Backbones together, two ways, on the one split every member's `zoolens train` makes (the split depends on the
    photos, ratios and seed, not on the backbone): one head on their features side by side (`CombinedExtractor`),
    and the mean of the members' own models' probabilities."""
    import zoolens
    from zoolens.models.member_scaling import normalised_members
    from zoolens.models.dense_head import fit_dense_head
    from zoolens.runtime.extractor import combined
    from zoolens.training.config import TrainConfig
    from zoolens.training.loop import head_settings

    root = Path(DATASETS[name]())
    models, splits = [], set()
    with tempfile.TemporaryDirectory(prefix="zoolens-accuracy-") as scratch:
        for member in members:
            model = zoolens.train(root, Path(scratch) / member, progress=False, backbone=member)
            models.append(model)
            splits.add((Path(scratch) / member / "split.csv").read_bytes())
            parts = part_rows(Path(scratch) / member / "split.csv")
    assert len(splits) == 1, "the members' splits differ"
    together = combined(*(model.extractor for model in models))
    paths = {part: [root / row["path"] for row in parts[part]] for part in parts}
    found = {part: together.features_of_paths(paths[part]) for part in parts}
    usable = {part: found[part].usable for part in parts}
    x = {part: found[part].features[usable[part]] for part in parts}
    y = {part: np.array([models[0].classes.index(row["label"]) for row in parts[part]])[usable[part]] for part in parts}
    def fitted(features: dict) -> object:
        return fit_dense_head(features["train"], y["train"], features["val"], y["val"], classes=len(models[0].classes),
                              settings=head_settings(TrainConfig()))[0]

    head = fitted(x)
    widths = tuple(model.feature_width for model in models)
    normalised = {part: normalised_members(x[part], widths) for part in x}  # what `train --backbone a+b` fits
    averaged = np.mean([model.class_probabilities(part_x) for model, part_x in
                        zip(models, together.parts(x["test"]))], axis=0)

    def accuracy(scores: np.ndarray) -> float:
        return round(float(np.mean(np.argmax(scores, axis=1) == y["test"])), 4)

    return {"benchmark": "accuracy_ensemble", "dataset": name, "members": members,
            "test_photos": int(usable["test"].sum()),
            "members_test_accuracy": {m: round(model.evaluation.accuracy, 4) for m, model in zip(members, models)},
            "features_side_by_side": accuracy(head(x["test"])),
            "each_member_scaled": accuracy(fitted(normalised)(normalised["test"])),
            "mean_of_probabilities": accuracy(averaged)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--backbone", action="append", help="repeat for several (default: mobilenet_v2)")
    parser.add_argument("--views", help="test-time views besides the photo, e.g. mirror or mirror,wide: measured "
                        "against plain features (train plain / train averaged, both tested averaged)")
    parser.add_argument("--ensemble", help="backbones together, e.g. mobilenet_v2+efficientnet_lite2: one head on "
                        "their features side by side (as they are, and each member scaled to one length as train does) against the mean of "
                        "their models' probabilities, each member at its own input size")
    parser.add_argument("--preset", choices=["best"], help="measure `zoolens train --preset best` too")
    args = parser.parse_args()
    for name in args.datasets:
        if args.ensemble:
            print(json.dumps(measure_ensemble(name, args.ensemble.split("+"))), flush=True)
            continue
        for backbone in args.backbone or ([] if args.preset else ["mobilenet_v2"]):
            found = measure_views(name, backbone, args.views) if args.views else measure(name, backbone)
            print(json.dumps(found), flush=True)
        if args.preset:
            print(json.dumps(measure(name, None, args.preset)), flush=True)


if __name__ == "__main__":
    main()
