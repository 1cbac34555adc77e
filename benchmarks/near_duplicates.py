"""How alike a photo and its copy are in the frozen features, against how alike distinct photos get: the figures
behind `data_issues.NEAR_DUPLICATE_SIMILARITY`. Prints one JSON object.

    .venv/bin/python benchmarks/near_duplicates.py

60 Imagewoof training photos (seed 0), each copied one way in turn: half size, re-encoded at JPEG quality 60, or
5 % cropped from each side; then, among all 5000 training photos, each one's most similar other photo.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

COPIES = 60


def copy_of(photo: Path, kind: int, folder: Path) -> Path:
    image = Image.open(photo).convert("RGB")
    if kind == 0:
        image = image.resize((image.width // 2, image.height // 2))
    elif kind == 2:
        w, h = image.size
        image = image.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
    out = folder / f"copy-{photo.stem}.jpg"
    image.save(out, quality=60 if kind == 1 else 85)
    return out


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    from zoolens.data.shared import ensure_shared_dataset
    from zoolens.models.backbones import build_backbone
    from zoolens.runtime.features import extract_features

    photos = sorted((ensure_shared_dataset("imagewoof") / "train").rglob("*.JPEG"))
    chosen = random.Random(0).sample(photos, COPIES)
    backbone = build_backbone("mobilenet_v2")
    with tempfile.TemporaryDirectory(prefix="zoolens-copies-") as scratch:
        copies = [copy_of(p, n % 3, Path(scratch)) for n, p in enumerate(chosen)]
        originals = unit(extract_features(chosen, backbone, progress=False).features)
        copied = unit(extract_features(copies, backbone, progress=False).features)
    copy_similarity = (originals * copied).sum(1)
    every = unit(extract_features(photos, backbone, progress=False).features)
    similarity = every @ every.T
    np.fill_diagonal(similarity, -1.0)
    nearest = similarity.max(1)
    upper = np.triu(similarity, 1)
    print(json.dumps({
        "benchmark": "near_duplicates", "copies": COPIES,
        "copy_similarity": {"min": round(float(copy_similarity.min()), 3),
                            "p5": round(float(np.percentile(copy_similarity, 5)), 3),
                            "median": round(float(np.median(copy_similarity)), 3)},
        "distinct_photos": len(photos),
        "nearest_other": {"p99": round(float(np.percentile(nearest, 99)), 3),
                          "p99.9": round(float(np.percentile(nearest, 99.9)), 3),
                          "max": round(float(nearest.max()), 3)},
        "distinct_pairs_at_or_above": {str(t): int((upper >= t).sum()) for t in (0.93, 0.95, 0.97)},
    }))


if __name__ == "__main__":
    main()
