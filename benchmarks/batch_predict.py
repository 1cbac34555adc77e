"""Batch prediction of a large folder tree (`zoolens predict MODEL DIR --out results.parquet`): images/s with
1 and 2 decoding workers, peak memory of the whole process tree at N/10 and N photos (it should not grow
with N, nor across the N-photo run: peaks per tenth of it), and a resumed run's time and how many photos it
re-did (must be 0). Prints one JSON object.

    .venv/bin/python benchmarks/batch_predict.py --images 100000 [--large-workers 2]

The photos are animals3's, re-encoded once and written N times with distinct bytes into a temporary
folder tree (never into the repository), 500 per sub-folder, as camera traps write them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3, demo_model, fresh_cache  # noqa: E402

PER_FOLDER = 500
CHUNK = 256  # zoolens.inference.batch.CHUNK_SIZE: photos per part


def reencoded_sources() -> list[bytes]:
    from PIL import Image

    sources = []
    for photo in sorted(animals3().rglob("*.jpg")):
        buffer = io.BytesIO()
        Image.open(photo).convert("RGB").save(buffer, format="JPEG", quality=85)
        sources.append(buffer.getvalue())
    return sources


def make_tree(root: Path, count: int, sources: list[bytes], start: int = 0) -> None:
    """`count` photos in sub-folders of PER_FOLDER; each copy differs by bytes after the JPEG end marker."""
    for i in range(start, start + count):
        folder = root / f"camera{i // (PER_FOLDER * 10):02d}" / f"day{(i // PER_FOLDER) % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"IMG_{i:07d}.jpg").write_bytes(sources[i % len(sources)] + i.to_bytes(4, "little"))


def _proc_fields(path: str) -> dict[str, str]:
    with open(path) as handle:
        return dict(line.split(":", 1) for line in handle if ":" in line)


def tree_pss_kib(pid: int) -> tuple[int, int] | None:
    """Memory of a process and all its descendants (Linux /proc), as proportional set size: pages the
    forked decoding workers share with their parent are counted once, not once per process as RSS would.
    Returns (the process alone, the process and its descendants), or None when one of them exited meanwhile."""
    parents: dict[int, int] = {}
    pss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parents[int(entry)] = int(_proc_fields(f"/proc/{entry}/status")["PPid"])
        except (OSError, KeyError, ValueError):
            continue
    family, changed = {pid}, True
    while changed:  # grandchildren too (the decoding workers), whatever the order of their pids
        changed = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                changed = True
    for member in family:
        try:
            pss[member] = int(_proc_fields(f"/proc/{member}/smaps_rollup").get("Pss", "0 kB").split()[0])
        except (OSError, ValueError):
            continue
    if not all(is_running(member) for member in family):
        # A worker exited between the reads: the pages it shared moved to its parent's PSS, possibly after
        # they were counted to it, and would be counted twice (seen once: +150 MB in the last sample).
        return None
    return pss.get(pid, 0), sum(pss.values())


def is_running(pid: int) -> bool:
    try:
        return _proc_fields(f"/proc/{pid}/status")["State"].split()[0] not in ("Z", "X")
    except (OSError, KeyError):
        return False


def timed_predict(model: Path, folder: Path, out: Path, workers: int, env: dict) -> dict:
    """One `zoolens predict ... --out` in its own process, sampling its process tree's memory."""
    command = [sys.executable, "-m", "zoolens.cli", "predict", str(model), str(folder), "--out", str(out),
               "--workers", str(workers)]
    existing = len(list(out.glob("part-*.parquet")))
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    peak, first_part, samples = [0], [None], []  # samples: (parts written, PSS of the main process, of all)

    def sample():
        while child.poll() is None:
            parts = len(list(out.glob("part-*.parquet"))) - existing
            measured = tree_pss_kib(child.pid)
            if measured is not None:
                main_kib, tree_kib = measured
                peak[0] = max(peak[0], tree_kib)
                samples.append((parts, main_kib, tree_kib))
            if first_part[0] is None and parts > 0:
                first_part[0] = time.perf_counter()
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = child.communicate()[1]
    seconds = time.perf_counter() - started
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"predict failed: {stderr[-2000:]}")
    summary_line = [line for line in stderr.splitlines() if "predicted" in line][-1]
    predicted = int(summary_line.split("predicted ")[1].split()[0])
    skipped = int(summary_line.split("skipped ")[1].split()[0])
    steady = None
    if first_part[0] is not None and predicted > CHUNK:
        steady = round((predicted - CHUNK) / (started + seconds - first_part[0]), 1)
    return {"seconds": round(seconds, 1), "predicted": predicted, "skipped": skipped,
            "images_per_s": round(predicted / seconds, 1) if predicted else None,
            "images_per_s_after_first_part": steady,  # without startup (imports, model, workers)
            "peak_tree_pss_mb": round(peak[0] / 1024, 1),
            "pss_mb_by_progress": memory_by_progress(samples, predicted)}


def memory_by_progress(samples: list[tuple[int, int, int]], predicted: int) -> dict | None:
    """Peak PSS (main process, whole tree) over each tenth of the run: flat memory means no trend across it."""
    parts = -(-predicted // CHUNK)
    if parts < 10:
        return None
    tenths: dict[int, list[int]] = {}
    for done, main_kib, tree_kib in samples:
        if done > 0:  # after startup
            tenth = min(9, done * 10 // parts)
            peaks = tenths.setdefault(tenth, [0, 0])
            peaks[0], peaks[1] = max(peaks[0], main_kib), max(peaks[1], tree_kib)
    return {f"{10 * t}-{10 * t + 10}%": {"main": round(m / 1024), "tree": round(a / 1024)}
            for t, (m, a) in sorted(tenths.items())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--large-workers", type=int, choices=(1, 2),
                        help="decoding workers for the N-photo run (default: the faster at N/10)")
    args = parser.parse_args()
    cache = fresh_cache()
    os.environ["ZOOLENS_CACHE"] = cache
    model = demo_model(cache)
    env = {**os.environ, "ZOOLENS_CACHE": cache}
    work = Path(tempfile.mkdtemp(prefix="zoolens-batch-bench-"))
    try:
        small_count = max(1, args.images // 10)
        started = time.perf_counter()
        sources = reencoded_sources()
        make_tree(work / "small", small_count, sources)
        make_tree(work / "large", args.images, sources)
        generated_s = time.perf_counter() - started
        # Startup (imports, model load, ONNX session) is inside every timing: it is what a user waits for.
        runs = {}
        for w in (1, 2):
            runs[f"{small_count}_photos_{w}_workers"] = timed_predict(model, work / "small", work / f"s{w}.parquet",
                                                                      w, env)
        best = args.large_workers or max((1, 2), key=lambda w: (
            runs[f"{small_count}_photos_{w}_workers"]["images_per_s_after_first_part"]
            or runs[f"{small_count}_photos_{w}_workers"]["images_per_s"]))
        runs[f"{args.images}_photos_{best}_workers"] = timed_predict(model, work / "large", work / "l.parquet", best,
                                                                     env)
        resumed = timed_predict(model, work / "large", work / "l.parquet", best, env)
        small_peak = runs[f"{small_count}_photos_{best}_workers"]["peak_tree_pss_mb"]
        large_peak = runs[f"{args.images}_photos_{best}_workers"]["peak_tree_pss_mb"]
        print(json.dumps({
            "benchmark": "batch_predict",
            "model": "mobilenet_v2 frozen, animals3",
            "cpu_count": os.cpu_count(),
            "images": args.images,
            "generate_s": round(generated_s, 1),
            "runs": runs,
            "peak_memory_pss_mb": {str(small_count): small_peak, str(args.images): large_peak,
                            "ratio": round(large_peak / small_peak, 2)},
            "resumed_run": {"seconds": resumed["seconds"], "redone": resumed["predicted"],
                            "skipped": resumed["skipped"]},
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
