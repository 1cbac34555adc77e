"""Prediction: single-photo latency (warm) for a 256-px JPEG and a 4000x3000 JPEG, and batch throughput
on a folder, zoolens vs plain PyTorch, in the same run on the same photos. Prints one JSON object.

    .venv/bin/python benchmarks/predict_latency.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3, demo_model, fresh_cache, run_child  # noqa: E402

REPEATS = 30


def make_photos(folder: Path) -> dict[str, Path]:
    from PIL import Image

    small = sorted((animals3() / "cats").iterdir())[10]
    big = folder / "camera_4000x3000.jpg"
    Image.open(small).convert("RGB").resize((4000, 3000)).save(big, quality=90)
    return {"jpeg_256px": small, "jpeg_4000x3000": big}


def unique_copies(photo: Path, folder: Path, count: int) -> list[Path]:
    """Copies that differ by bytes after the JPEG end marker: same picture, not served from a cache."""
    data = photo.read_bytes()
    copies = []
    for i in range(count):
        copy = folder / f"{photo.stem}_{i}.jpg"
        copy.write_bytes(data + i.to_bytes(4, "little"))
        copies.append(copy)
    return copies


def plain_pytorch(model):
    """What a notebook does: PIL decode, torchvision transforms, eager forward under no_grad."""
    import torch
    from PIL import Image
    from torchvision import transforms

    prep = model.preprocessing
    transform = transforms.Compose([
        transforms.Resize(prep.resize_size), transforms.CenterCrop(prep.input_size), transforms.ToTensor(),
        transforms.Normalize(prep.mean, prep.std),
    ])
    network = model.network.eval()

    def predict(paths):
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
        with torch.no_grad():
            return torch.softmax(network(batch), 1).numpy()

    return predict


def latency_ms(predict, photos: list[Path]) -> dict:
    predict(photos[:1])
    times = []
    for photo in photos[1:]:
        started = time.perf_counter()
        predict([photo])
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 1), "p95_ms": round(float(np.percentile(times, 95)), 1)}


def throughput(predict, photos: list[Path], batch: int = 32) -> float:
    started = time.perf_counter()
    for i in range(0, len(photos), batch):
        predict(photos[i : i + batch])
    return round(len(photos) / (time.perf_counter() - started), 1)


def measure(side: str, cache: str) -> dict:
    os.environ["ZOOLENS_CACHE"] = cache
    import zoolens

    model = zoolens.Model.load(demo_model(cache))
    folder = Path(cache) / f"photos-{side}"
    folder.mkdir()
    predict = (lambda paths: model.predict(list(paths))) if side == "zoolens" else plain_pytorch(model)
    result = {}
    for name, photo in make_photos(folder).items():
        result[name] = latency_ms(predict, unique_copies(photo, folder, REPEATS + 1))
    originals = sorted(animals3().rglob("*.jpg"))[::10][:300]
    batch = [unique_copies(photo, folder, 1)[0] for photo in originals]  # not in the feature cache
    result["folder_images_per_s"] = throughput(predict, batch)
    return result


def main() -> None:
    if len(sys.argv) == 3:  # a child: one side, in its own process so its peak memory is its own
        print(json.dumps(measure(sys.argv[1], sys.argv[2])))
        return
    cache = fresh_cache()
    os.environ["ZOOLENS_CACHE"] = cache
    demo_model(cache)
    sides = {side: run_child("predict_latency.py", side, cache) for side in ("zoolens", "plain_pytorch")}
    result = {"benchmark": "predict", "model": "mobilenet_v2 frozen, animals3", "cpu_count": os.cpu_count()}
    for key in ("jpeg_256px", "jpeg_4000x3000"):
        result[key] = {side: sides[side][key] for side in sides}
        result[key]["p50_ratio"] = round(sides["plain_pytorch"][key]["p50_ms"] / sides["zoolens"][key]["p50_ms"], 2)
    result["folder_images_per_s"] = {side: sides[side]["folder_images_per_s"] for side in sides}
    result["folder_images_per_s"]["ratio"] = round(
        sides["zoolens"]["folder_images_per_s"] / sides["plain_pytorch"]["folder_images_per_s"], 2)
    result["peak_memory_mb"] = {side: sides[side]["peak_memory_mb"] for side in sides}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
