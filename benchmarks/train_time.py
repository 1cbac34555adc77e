"""Time from `zoolens train` to a saved model on animals3 (3000 photos, frozen MobileNetV2), with an empty feature
cache and again with it warm, each as a user runs it: the wall time of a new `zoolens` process, from start to exit
(imports, training, evaluation, saving, and the interpreter's exit all included). Each warm run alternates with the
bare interpreter importing only NumPy, Pillow and ONNX Runtime, so that other work on the machine weighs on both
alike; the ratio of their medians is given. The warm runs also say which heavy modules the process imported.
Prints one JSON object.

    .venv/bin/python benchmarks/train_time.py [--warm-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3, fresh_cache  # noqa: E402


BARE = [sys.executable, "-c", "import numpy, PIL.Image, onnxruntime"]
HEAVY = ("torch", "torchvision", "lightning", "sklearn", "scipy.optimize", "matplotlib")
# Runs the command line as `zoolens` does, then writes which HEAVY modules it imported to the file $IMPORTED_TO.
ZOOLENS = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["IMPORTED_TO"], "w").write(json.dumps(
    [name for name in {heavy} if name in sys.modules])))
from zoolens.cli.program import run
sys.argv = ["zoolens"] + sys.argv[1:]
run()
""".format(heavy=HEAVY)


def train_once(out: str, env: dict) -> dict:
    imported = Path(out + ".imported.json")
    command = [sys.executable, "-c", ZOOLENS, "train", str(animals3()), "--out", out, "--quiet"]
    started = time.perf_counter()
    subprocess.run(command, env={**env, "IMPORTED_TO": str(imported)}, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    metrics = json.loads((Path(out) / "zoolens.json").read_text())["metrics"]
    return {"seconds": round(seconds, 2), "test_accuracy": round(metrics["accuracy"], 4),
            "imported": json.loads(imported.read_text())}


def bare_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(BARE, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()
    cache = fresh_cache()
    animals3()  # unpacking the archive is not training time
    env = {**os.environ, "ZOOLENS_CACHE": cache}
    cold = train_once(os.path.join(cache, "cold"), env)
    warm, bare = [], []
    for i in range(args.warm_runs):
        warm.append(train_once(os.path.join(cache, f"warm{i}"), env))
        bare.append(bare_seconds())
    seconds = [run["seconds"] for run in warm]
    print(json.dumps({
        "benchmark": "train_time", "dataset": "animals3", "images": 3000, "cpu_count": os.cpu_count(),
        "cold_cache": cold,
        "warm_cache": {"median_seconds": round(statistics.median(seconds), 2), "seconds": seconds,
                       "bare_interpreter_median_seconds": round(statistics.median(bare), 3),
                       "ratio_to_bare": round(statistics.median(seconds) / statistics.median(bare), 1),
                       "test_accuracy": sorted({run["test_accuracy"] for run in warm}),
                       "imported": sorted({name for run in warm for name in run["imported"]})},
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
