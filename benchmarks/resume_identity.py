"""What a resumed batch job's photo identity costs (path + size + modification time, docs/scale.md): a folder tree of
empty photo files (PHOTOS of them, 1000 a folder) walked with names only (the walk before the identity) and with the
stat the identity needs; reading what a results folder already holds, by path only and with the identity and its
checks; a resumed run with nothing changed and with one photo changed; and, for the alternative of a content hash,
SHA-256 over 500 real animals3 photos, scaled to a million 3 MB camera frames. Prints one JSON object.

    .venv/bin/python benchmarks/resume_identity.py [--photos 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zoolens.data.images import is_image_name
from zoolens.data.shared import ensure_shared_dataset
from zoolens.inference.batch.results import FORMAT, RESULTS_VERSION, ResultsDataset, stored_schema
from zoolens.inference.batch.walk import as_text, found_key, pending_chunks, walk_photos


def make_tree(root: Path, photos: int) -> None:
    for f in range(photos // 1000):
        folder = root / f"site{f:03d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            (folder / f"IMG_{i:05d}.jpg").write_bytes(b"x" * (i % 7))


def old_walk(r, folder="."):  # the walk before: names only, no stat
    with os.scandir(r) as es:
        listing = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in es if not e.name.startswith("."))
    for name, d in listing:
        if not d and is_image_name(Path(name)):
            yield r / name, folder
    for name, d in listing:
        if d:
            yield from old_walk(r / name, name if folder == "." else f"{folder}/{name}")

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=100_000)
    N = parser.parse_args().photos
    with tempfile.TemporaryDirectory(prefix="zoolens-resume-") as scratch:
        root = Path(scratch) / "photos"
        make_tree(root, N)
        measure(root, N)


def measure(root: Path, N: int) -> None:
    out = {}
    for rep in range(2):
        t = time.perf_counter(); n = sum(1 for _ in old_walk(root)); out[f"walk_names_only_s_{rep}"] = time.perf_counter() - t
        t = time.perf_counter(); n2 = sum(1 for _ in walk_photos(root)); out[f"walk_with_stat_s_{rep}"] = time.perf_counter() - t
    assert n == n2 == N, (n, n2, N)
    t = time.perf_counter(); keys = [found_key(item) for item in walk_photos(root)]; out["walk_stat_and_keys_s"] = time.perf_counter() - t

    settings = {"format": FORMAT, "root": str(root.resolve()), "classes": ["cats", "dogs", "panda"], "model_created": None,
                "top_k": 1, "min_confidence": 0.0, "open_set": "on", "results_version": RESULTS_VERSION}
    res_dir = root.parent / (root.name + "-results.parquet")
    shutil.rmtree(res_dir, ignore_errors=True)
    results = ResultsDataset(res_dir, settings, root)
    schema = stored_schema(1)
    items = list(walk_photos(root))
    for start in range(0, N, 256):
        chunk = items[start:start + 256]
        cols = {name: [None] * len(chunk) for name in schema.names}
        cols["path"] = [as_text(i.path) for i in chunk]; cols["folder"] = [i.folder for i in chunk]
        cols["verdict"] = ["class"] * len(chunk); cols["label"] = ["cats"] * len(chunk)
        cols["size"] = [i.size for i in chunk]; cols["mtime_ns"] = [i.mtime_ns for i in chunk]
        pq.write_table(pa.table(cols, schema=schema), str(res_dir / f"part-{start // 256:05d}.parquet"))
    del items
    def old_done():
        keys = []
        for table in results.read_parts(["path", "folder"]):
            paths, folders = table.column("path").to_pylist(), table.column("folder").to_pylist()
            keys.append(np.fromiter((int.from_bytes(hashlib.blake2b(f"{f}/{os.path.basename(p)}".encode(), digest_size=8).digest(), "little") for p, f in zip(paths, folders)), dtype=np.uint64, count=len(paths)))
        return keys
    for rep in range(2):
        t = time.perf_counter(); old_done(); out[f"old_done_path_only_s_{rep}"] = time.perf_counter() - t
        t = time.perf_counter(); results.done(); out[f"new_done_identity_and_checks_s_{rep}"] = time.perf_counter() - t
    for label in ("resume_unchanged", "resume_one_changed"):
        if label == "resume_one_changed":
            p = root / f"site{(N // 1000) // 2:03d}" / "IMG_00500.jpg"
            p.write_bytes(b"changed content")
        t = time.perf_counter(); done = results.done(); t_done = time.perf_counter() - t
        counts = Counter()
        t = time.perf_counter(); pend = sum(len(c) for c in pending_chunks(walk_photos(root), done, 256, None, counts)); t_walk = time.perf_counter() - t
        t = time.perf_counter(); removed = results.drop_stale(done); t_drop = time.perf_counter() - t
        out[label] = dict(done_read_s=round(t_done, 2), walk_and_match_s=round(t_walk, 2), drop_stale_s=round(t_drop, 2),
                          pending=pend, skipped=counts["skipped"], removed=removed)
    # content hash alternative: sha256 over real photos
    photos = sorted((ensure_shared_dataset("animals3") / "cats").iterdir())[:500]
    size = sum(p.stat().st_size for p in photos)
    t = time.perf_counter()
    for p in photos:
        hashlib.sha256(p.read_bytes()).digest()
    dt = time.perf_counter() - t
    out["sha256_500_animals3_photos"] = dict(seconds=round(dt, 3), mean_kb=round(size / 500 / 1024, 1), mb_per_s=round(size / dt / 2**20))
    for cam_kb in (3000,):
        out[f"sha256_1M_photos_of_{cam_kb}KB_warm_cache_s"] = round(1e6 * cam_kb * 1024 / (size / dt))
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["photos"] = N
    print(json.dumps({"benchmark": "resume_identity", **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}}))


if __name__ == "__main__":
    main()
