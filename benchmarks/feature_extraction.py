"""Frozen-feature extraction, images/s: zoolens vs plain torchvision eager, same photos, same run.

    .venv/bin/python benchmarks/feature_extraction.py [--images 600] [--backbone NAME ...]

Prints one JSON object per backbone (default mobilenet_v2), all measured in one run so they compare. "plain"
(MobileNetV2 only) is what a notebook does: model.eval(), torch.no_grad(), a standard DataLoader with
torchvision transforms. zoolens is measured with its feature cache empty (every photo decoded and run through
the network) and again warm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import mobilenet_v2


class PlainPhotos(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.transform = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB"))


def plain_images_per_second(paths: list[Path]) -> float:
    from zoolens.models.available import OFFLINE_WEIGHTS

    model = mobilenet_v2()
    model.load_state_dict(torch.load(OFFLINE_WEIGHTS["mobilenet_v2"].path(), weights_only=True))
    model.classifier = torch.nn.Identity()
    model.eval()
    loader = torch.utils.data.DataLoader(PlainPhotos(paths), batch_size=32, num_workers=2)
    started = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            model(batch)
    return len(paths) / (time.perf_counter() - started)


def zoolens_images_per_second(paths: list[Path], name: str) -> tuple[float, float]:
    from zoolens.models.backbones import build_backbone
    from zoolens.runtime import features

    backbone = build_backbone(name)
    features.extract_features(paths[:32], backbone, progress=False)  # the one-off ONNX export, not timed
    features.FeatureCache(features.backbone_key(backbone, backbone.info.preprocessing)).db.execute(
        "DELETE FROM features").connection.commit()
    started = time.perf_counter()
    features.extract_features(paths, backbone, progress=False)
    cold = len(paths) / (time.perf_counter() - started)
    started = time.perf_counter()
    features.extract_features(paths, backbone, progress=False)
    return cold, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--backbone", action="append", help="repeat for several (default: mobilenet_v2)")
    args = parser.parse_args()
    os.environ["ZOOLENS_CACHE"] = tempfile.mkdtemp(prefix="zoolens-bench-")
    from zoolens.data.shared import ensure_shared_dataset

    root = ensure_shared_dataset("animals3")
    paths = sorted(root.rglob("*.jpg"))[:: max(1, 3000 // args.images)][: args.images]
    for name in args.backbone or ["mobilenet_v2"]:
        print(json.dumps(measure(paths, name)), flush=True)


def measure(paths: list[Path], name: str) -> dict:
    from zoolens.models.available import describe_backbone

    plain = plain_images_per_second(paths) if name == "mobilenet_v2" else None
    cold, warm_seconds = zoolens_images_per_second(paths, name)
    return {
        "benchmark": "feature_extraction",
        "dataset": "animals3",
        "images": len(paths),
        "input_size": describe_backbone(name).preprocessing.input_size,
        "backbone": name,
        "plain_torchvision_eager_images_per_s": plain and round(plain, 1),
        "zoolens_cold_cache_images_per_s": round(cold, 1),
        "ratio": plain and round(cold / plain, 2),
        "zoolens_warm_cache_seconds": round(warm_seconds, 3),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


if __name__ == "__main__":
    main()
