"""Open-set ("none of these") methods side by side, on the same photos: how many photos of none of a model's
classes each still accepts as a class, and what it costs on the model's own test photos.

    .venv/bin/python benchmarks/open_set.py [--quick] [--datasets animals3,imagewoof] [--backbone NAME]

Methods, each with its threshold fitted on the model's validation photos so that 98 % of them are kept:
"max probability alone" (calibrated max class probability), "feature distance alone" (10th-nearest-neighbour
cosine distance to the training features), "ImageNet animal check alone" (the backbone's ImageNet classifier's
probability of any animal), "known ImageNet kinds alone" (its probability on the categories the training
photos are seen as, where the model has that check), and "shipped" (the model's own answers, `open_set="on"`,
and "strict").

Models: frozen MobileNetV2, default options, trained here on animals3 (known: its test part; unknown: LFW
faces, CIFAR-10 test airplane/automobile/ship/truck, CIFAR-10 test deer/frog/horse) and on Imagewoof (known: its
held-out part; unknown: faces, the CIFAR objects, animals3 cats and panda, CIFAR deer/horse).
Prints one JSON object per line: per dataset and method, the known test photos turned away, accuracy on those
answered, the share accepted of each unknown set, and the AUROC (known 0, unknown 1) of the method's score.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

KEEP = 0.98  # of the validation photos, for the single-signal thresholds (the shipped check's budget too)
CIFAR_OBJECTS = ("airplane", "automobile", "ship", "truck")


def spread(paths: list, count: int) -> list:
    """`count` of `paths` (or samples, by their paths), evenly spaced through the sorted list (all of them if fewer)."""
    paths = sorted(paths, key=lambda one: getattr(one, "path", one))
    if len(paths) <= count:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def photos_of(folders: list[Path], count: int) -> list[Path]:
    """About `count` photos, shared evenly among the folders."""
    from zoolens.data.folders import walk_files
    from zoolens.data.images import is_image_name

    each = -(-count // len(folders))
    chosen = [p for folder in folders for p in spread([p for p in walk_files(folder) if is_image_name(p)], each)]
    return spread(chosen, count)


def unknown_sets(dataset: str, count: int) -> dict[str, list[Path]]:
    from zoolens.data.shared import ensure_shared_dataset

    cifar = ensure_shared_dataset("cifar10") / "test"
    sets = {"people (LFW faces)": photos_of([ensure_shared_dataset("faces")], count),
            "objects (CIFAR-10 " + "/".join(CIFAR_OBJECTS) + ")": photos_of([cifar / c for c in CIFAR_OBJECTS], count)}
    if dataset == "animals3":
        sets["unknown animals (CIFAR-10 deer/frog/horse)"] = photos_of([cifar / c for c in ("deer", "frog", "horse")],
                                                                        count)
    else:
        animals3 = ensure_shared_dataset("animals3")
        sets["animals3 cats+panda"] = photos_of([animals3 / "cats", animals3 / "panda"], count)
        sets["unknown animals (CIFAR-10 deer/horse)"] = photos_of([cifar / c for c in ("deer", "horse")], count)
    return sets


# ---- what each method sees of a photo --------------------------------------------------------------
class Signals:
    """Per photo: the features, the calibrated class probabilities, the open-set scores, and the shipped answers."""

    def __init__(self, model, paths: list[Path], labels: list[int] | None = None):
        from zoolens.inference.prediction import CLASS

        found = model.features_of_paths(paths, progress=False)
        self.features = found.features[found.usable]
        self.labels = np.array(labels)[found.usable] if labels is not None else None
        self.probabilities = model.class_probabilities(self.features)
        self.confidence = self.probabilities.max(axis=1)
        self.scores = model.open_set_scores(self.features)
        sources = [str(p) for p, ok in zip(paths, found.usable) if ok]
        self.shipped = {mode: np.array([a.verdict != CLASS for a in model.predict_features(sources, self.features,
                                                                                            top_k=1, open_set=mode)])
                        for mode in ("on", "strict")}
        self.unusable = int((~found.usable).sum())

    def __len__(self) -> int:
        return len(self.features)


def single_signal(name: str):
    """The unknown-ness score of one signal alone: higher is less like the model's own photos."""
    if name == "max probability alone":
        return lambda s: 1.0 - s.confidence
    if name == "feature distance alone":
        return lambda s: s.scores.distance.astype(np.float64)
    if name == "ImageNet animal check alone":
        return lambda s: 1.0 - s.scores.animal.astype(np.float64)
    if name == "known ImageNet kinds alone":
        return lambda s: 1.0 - s.scores.known.astype(np.float64)
    raise ValueError(name)


def method_rows(model, validation: Signals, known: Signals, unknown: dict[str, Signals]) -> list[dict]:
    from zoolens.evaluation.open_set_eval import unknown_score

    rows = []
    methods = ["max probability alone", "feature distance alone"]
    if model.open_set.animal_check:
        methods.append("ImageNet animal check alone")
    if getattr(validation.scores, "known", None) is not None:
        methods.append("known ImageNet kinds alone")
    for name in methods:
        score = single_signal(name)
        threshold = float(np.quantile(score(validation), KEEP))
        rows.append(measure(name, score, lambda s, score=score, t=threshold: score(s) > t, validation, known, unknown,
                            {"threshold": round(threshold, 5)}))
    for mode in ("on", "strict"):
        def score(s: Signals, mode=mode) -> np.ndarray:
            return unknown_score(model.open_set, s.scores, s.confidence, mode)

        rows.append(measure(f"shipped ({mode})", score, lambda s, mode=mode: s.shipped[mode], validation, known,
                            unknown, {"thresholds": model.meta["open_set"]["thresholds"][mode]}))
    return rows


def measure(name: str, score, turned_away, validation: Signals, known: Signals, unknown: dict[str, Signals],
            extra: dict) -> dict:
    from zoolens.evaluation.open_set_eval import auroc

    away = turned_away(known)
    answered = ~away
    right = known.probabilities.argmax(axis=1) == known.labels
    known_score = score(known)
    all_unknown = np.concatenate([score(s) for s in unknown.values()])
    return {
        "method": name,
        "validation_turned_away": round(float(turned_away(validation).mean()), 4),
        "known_turned_away": round(float(away.mean()), 4),
        "accuracy_answered": round(float(right[answered].mean()), 4) if answered.any() else None,
        "accuracy_all": round(float(right.mean()), 4),
        "accepted": {set_name: round(float((~turned_away(s)).mean()), 4) for set_name, s in unknown.items()},
        "auroc": {**{set_name: round(auroc(known_score, score(s)), 4) for set_name, s in unknown.items()},
                  "all unknown": round(auroc(known_score, all_unknown), 4)},
        **extra,
    }


# ---- one dataset ---------------------------------------------------------------------------------------
def known_parts(model, root: Path) -> tuple[list, list]:
    """The model's own validation and test photos (from the split it saved)."""
    from zoolens.data.split import read_manifest
    from zoolens.evaluation.evaluate import choose_photos

    validation = read_manifest(model.path / "split.csv", root).part("val")
    test, _, _ = choose_photos(model, root)
    return validation, test


def run_dataset(dataset: str, count: int, scratch: Path, backbone: str = "mobilenet_v2") -> list[dict]:
    import zoolens
    from zoolens.data.shared import ensure_shared_dataset

    root = ensure_shared_dataset(dataset)
    started = time.perf_counter()
    model = zoolens.train(root, scratch / dataset, progress=False, backbone=backbone)
    trained = round(time.perf_counter() - started, 1)
    index = {name: i for i, name in enumerate(model.classes)}
    validation, test = known_parts(model, root)
    test = spread(test, count * 3) if len(test) > count * 3 else test
    validation_signals = Signals(model, [s.path for s in validation], [index[s.label] for s in validation])
    known = Signals(model, [s.path for s in test], [index[s.label] for s in test])
    unknown = {name: Signals(model, paths) for name, paths in unknown_sets(dataset, count).items()}
    common = {"benchmark": "open_set", "dataset": dataset, "classes": len(model.classes),
              "backbone": model.record.backbone.name, "train_seconds": trained,
              "animal_check": model.meta["open_set"]["animal_check"],
              "photos": {"validation": len(validation_signals), "known test": len(known),
                         **{name: len(s) for name, s in unknown.items()}}}
    return [{**common, **row} for row in method_rows(model, validation_signals, known, unknown)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="200 photos per unknown set (default 1000)")
    parser.add_argument("--datasets", default="animals3,imagewoof", help="comma-separated: animals3, imagewoof")
    parser.add_argument("--backbone", default="mobilenet_v2",
                        help="the models' backbone, or an ensemble's members joined by + (mobilenet_v2+efficientnet_lite2)")
    args = parser.parse_args()
    count = 200 if args.quick else 1000
    datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = sorted(set(datasets) - {"animals3", "imagewoof"})
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)} (choose from animals3, imagewoof)")
    with tempfile.TemporaryDirectory(prefix="zoolens-bench-open-set-") as scratch:  # the models trained here
        for dataset in datasets:
            for row in run_dataset(dataset, count, Path(scratch), args.backbone):
                print(json.dumps({**row, "quick": args.quick, "cpu_count": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
