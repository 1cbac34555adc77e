"""Near-duplicate finding, measured: how alike copies and distinct photos are in the frozen features and in their
pixels (the figures behind `data_issues.CANDIDATE_SIMILARITY` and `PIXEL_MATCH`), then the issue's test: a copy of
Imagewoof with 50 copies of its training photos placed in its test part (`val/`), run through
`find_data_issues`. Prints one JSON object.

    .venv/bin/python benchmarks/near_duplicates.py

Copies are made one way in turn: half size; re-encoded at JPEG quality 50; 5 % cropped from each side; cropped off
centre (8 % from the left and top, 2 % from the right and bottom) and scaled to 3/4.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

COPIES = 50
KINDS = ("half size", "JPEG quality 50", "5 % cropped", "off-centre crop, 3/4 size")


def copy_of(photo: Path, kind: int, out: Path) -> Path:
    image = Image.open(photo).convert("RGB")
    w, h = image.size
    if kind == 0:
        image = image.resize((w // 2, h // 2))
    elif kind == 2:
        image = image.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
    elif kind == 3:
        image = image.crop((int(w * 0.08), int(h * 0.08), int(w * 0.98), int(h * 0.98)))
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, quality=50 if kind == 1 else 85)
    return out


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"min": round(float(values.min()), 3), "p5": round(float(np.percentile(values, 5)), 3),
            "median": round(float(np.median(values)), 3)}


def planted_set(source: Path, folder: Path) -> tuple[Path, dict[frozenset[str], str]]:
    """Imagewoof copied to `folder`, with COPIES copies of training photos under val/ (its test part); the planted
    pairs (paths under the folder), each with how its copy was made."""
    data = folder / "imagewoof"
    shutil.copytree(source, data)
    photos = sorted((data / "train").rglob("*.JPEG"))
    pairs = {}
    for n, photo in enumerate(random.Random(0).sample(photos, COPIES)):
        copy = data / "val" / photo.parent.name / f"copy-{photo.stem}.jpg"
        copy_of(photo, n % len(KINDS), copy)
        pair = frozenset({photo.relative_to(data).as_posix(), copy.relative_to(data).as_posix()})
        pairs[pair] = KINDS[n % len(KINDS)]
    return data, pairs


def main() -> None:
    from zoolens.data.shared import ensure_shared_dataset
    from zoolens.evaluation.data_issues import find_data_issues, grey_thumbnail, pixel_match

    source = ensure_shared_dataset("imagewoof")
    with tempfile.TemporaryDirectory(prefix="zoolens-copies-") as scratch:
        data, planted = planted_set(source, Path(scratch))
        started = time.perf_counter()
        issues = find_data_issues(data, progress=False)
        seconds = time.perf_counter() - started
        found = {frozenset({row.path_a, row.path_b}): row for row in issues.near_duplicates}
        hits = [pair for pair in planted if pair in found]
        false = [row for pair, row in found.items() if pair not in planted]
        by_kind = {kind: sum(planted[pair] == kind for pair in hits) for kind in KINDS}
        copy_pixels = [pixel_match(*(grey_thumbnail(data / path) for path in sorted(pair))) for pair in planted]
        features = _copy_feature_similarity(issues, planted)
    print(json.dumps({
        "benchmark": "near_duplicates", "photos": len(issues.paths), "planted_copies": COPIES,
        "found": len(hits), "false_pairs": len(false), "found_by_kind": by_kind,
        "crossing_the_split_found": sum(found[p].crosses_split for p in hits),
        "false_pairs_seen": [{k: getattr(row, k) for k in ("path_a", "path_b", "similarity", "pixel_match")}
                             for row in false],
        "copy_feature_similarity": spread(features), "copy_pixel_match": spread(copy_pixels),
        "seconds": round(seconds, 1),
    }))


def _copy_feature_similarity(issues, planted) -> list[float]:
    """Each planted pair's feature similarity, recomputed from the cached features of its two photos."""
    from zoolens.models.backbones import build_backbone
    from zoolens.runtime.features import extract_features

    backbone = build_backbone("mobilenet_v2")
    pairs = [sorted(pair) for pair in planted]
    first = unit(extract_features([issues.root / a for a, _ in pairs], backbone, progress=False).features)
    second = unit(extract_features([issues.root / b for _, b in pairs], backbone, progress=False).features)
    return list((first * second).sum(1))


if __name__ == "__main__":
    main()
