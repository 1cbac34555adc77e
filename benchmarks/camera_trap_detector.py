"""The camera-trap animal detector (MegadetectorLite: zamba's one-class YOLOX-tiny, runtime/animal_detector.py) on the
real frames of the shared camera-traps set, and its cost against the feature extraction every photo pays anyway.

    .venv/bin/python benchmarks/camera_trap_detector.py [--input-size 640]

Prints one JSON object per line: each frame's best confidence and boxes (at 0.05, the lowest threshold looked at);
recall of frames with an animal (ENA24's 21, speciesnet's species frames, the heron burst) and the empty frames with
a box, at thresholds 0.1/0.2/0.3/0.5, with and without boxes that lie in the frame's information bars (the top and
bottom 15 %: where camera makers print their logo and the time); what it says on human.jpg and vehicle.jpg; the
IoU of its best box with ena24/md_annotations.json's; and the time per frame (decoded frames in, batches of 8)
against MobileNetV2 features at 224 px, in the same run.
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

THRESHOLDS = (0.1, 0.2, 0.3, 0.5)
FLOOR = 0.05
BAR = 0.15  # of the frame's height: a box wholly inside the top or bottom strip is on the information bar
DAMAGED = ("african_elephants_truncated_file.jpg",)


def frames(root: Path) -> dict[str, list[Path]]:
    """The real frames by kind: with an animal, empty, the person, the vehicle."""
    species = root / "speciesnet-test"
    animals = sorted((root / "ena24").glob("*.jpg")) + sorted((root / "camtrap-dp-example" / "media").glob("*.JPG"))
    animals += sorted(p for p in species.glob("*.jpg")
                      if not p.name.startswith(("blank", "human", "vehicle")) and p.name not in DAMAGED)
    return {"animal": animals, "blank": sorted(species.glob("blank*.jpg")),
            "person": [species / "human.jpg"], "vehicle": [species / "vehicle.jpg"]}


def group(path: Path) -> str:
    return {"ena24": "ena24", "media": "heron burst"}.get(path.parent.name, "speciesnet species")


def on_bar(box) -> bool:
    return box.y >= 1 - BAR or box.y + box.h <= BAR


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w, h = max(0.0, min(ax2, bx2) - max(a[0], b[0])), max(0.0, min(ay2, by2) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return w * h / union if union > 0 else 0.0


def per_frame_time(run, batches, repeats: int = 3) -> float:
    """Best of `repeats` passes over the batches, in ms per frame."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / sum(len(batch) for batch in batches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-size", type=int, default=640)
    args = parser.parse_args()
    os.environ.setdefault("ZOOLENS_CACHE", tempfile.mkdtemp(prefix="zoolens-bench-"))

    from zoolens.data.images import open_image
    from zoolens.data.shared import ensure_shared_dataset
    from zoolens.runtime.animal_detector import AnimalDetector, letterbox

    root = ensure_shared_dataset("camera-traps")
    kinds = frames(root)
    start = time.perf_counter()
    detector = AnimalDetector(threshold=FLOOR, input_size=args.input_size)
    print(json.dumps({"measure": "detector ready (export or checked load)", "seconds": round(time.perf_counter() -
                                                                                               start, 1)}))
    decoded = {path: open_image(path) for paths in kinds.values() for path in paths}
    found = {}
    for path, image in decoded.items():
        found[path] = detector.detect([image])[0]
        best = max((d.conf for d in found[path]), default=0.0)
        print(json.dumps({"frame": str(path.relative_to(root)), "size": list(image.size),
                          "max_conf": round(best, 3), "boxes": len(found[path]),
                          "boxes_on_info_bar": sum(map(on_bar, found[path])),
                          "best_box": [round(v, 3) for v in found[path][0].bbox] if found[path] else None}))

    def frame_says(path, threshold, skip_bar):
        return any(d.conf >= threshold and not (skip_bar and on_bar(d)) for d in found[path])

    for skip_bar in (False, True):
        for threshold in THRESHOLDS:
            row = {"measure": "frames with a box", "threshold": threshold, "ignoring_info_bar_boxes": skip_bar}
            for name in ("ena24", "heron burst", "speciesnet species"):
                paths = [p for p in kinds["animal"] if group(p) == name]
                row[f"recall {name}"] = f"{sum(frame_says(p, threshold, skip_bar) for p in paths)}/{len(paths)}"
            hits = sum(frame_says(p, threshold, skip_bar) for p in kinds["animal"])
            row["recall all animal frames"] = round(hits / len(kinds["animal"]), 3)
            row["blank frames with a box"] = (f"{sum(frame_says(p, threshold, skip_bar) for p in kinds['blank'])}/"
                                              f"{len(kinds['blank'])}")
            row["fires on human.jpg"] = frame_says(kinds["person"][0], threshold, skip_bar)
            row["fires on vehicle.jpg"] = frame_says(kinds["vehicle"][0], threshold, skip_bar)
            print(json.dumps(row))

    annotations = json.loads((root / "ena24" / "md_annotations.json").read_text())
    overlaps = {}
    for entry in annotations["images"]:
        ours = found.get(root / "ena24" / entry["file"])
        if ours and entry["detections"]:
            theirs = max(entry["detections"], key=lambda d: d["conf"])["bbox"]
            overlaps[entry["file"]] = round(iou(ours[0].bbox, theirs), 3)
    values = list(overlaps.values())
    print(json.dumps({"measure": "IoU of our best box with md_annotations.json's", "frames": len(values),
                      "median": float(np.median(values)) if values else None,
                      "min": min(values, default=None), "max": max(values, default=None),
                      "at least 0.5": sum(v >= 0.5 for v in values), "per_frame": overlaps}))

    from zoolens.models.backbones import build_backbone
    from zoolens.data.transforms import cropped_pixels
    from zoolens.runtime.features import extractor_of_backbone, make_engine

    backbone = build_backbone("mobilenet_v2")
    prep = backbone.info.preprocessing
    features = make_engine(extractor_of_backbone(backbone, prep), "onnx")
    images = list(decoded.values())[:32]
    batches = [images[i : i + 8] for i in range(0, len(images), 8)]
    size = args.input_size
    detect_ms = per_frame_time(detector.detect, batches)
    network_ms = per_frame_time(detector.raw, [np.stack([letterbox(im, size)[0] for im in b]) for b in batches])
    mobilenet_ms = per_frame_time(lambda b: features(np.stack([cropped_pixels(im, prep) for im in b])), batches)
    mobilenet_network_ms = per_frame_time(features, [np.stack([cropped_pixels(im, prep) for im in b])
                                                     for b in batches])
    print(json.dumps({
        "measure": "time per frame, decoded frames in, batches of 8", "frames": len(images),
        "cpu_count": os.cpu_count(), "input_size": size,
        "detector_ms (letterbox + network + NMS)": round(detect_ms, 1), "detector_network_ms": round(network_ms, 1),
        "mobilenet_v2_224_ms (resize/crop + network)": round(mobilenet_ms, 1),
        "mobilenet_v2_224_network_ms": round(mobilenet_network_ms, 1),
        "ratio detector/mobilenet": round(detect_ms / mobilenet_ms, 2),
        "ratio networks only": round(network_ms / mobilenet_network_ms, 2)}))


if __name__ == "__main__":
    main()
