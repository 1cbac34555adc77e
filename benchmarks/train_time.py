"""Time from `zoolens train` to a saved model on animals3 (3000 photos, frozen MobileNetV2), with an empty
feature cache and again with it warm, each as a user runs it (a new process). Prints one JSON object.

    .venv/bin/python benchmarks/train_time.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import animals3, fresh_cache, run_child  # noqa: E402


def train_once(out: str) -> dict:
    from zoolens.cli import main as zoolens

    started = time.perf_counter()
    zoolens(["train", str(animals3()), "--out", out, "--quiet"])
    seconds = time.perf_counter() - started
    metrics = json.loads((Path(out) / "zoolens.json").read_text())["metrics"]
    return {"seconds": round(seconds, 1), "test_accuracy": round(metrics["accuracy"], 4)}


def main() -> None:
    if len(sys.argv) == 2:
        print(json.dumps(train_once(sys.argv[1])))
        return
    cache = fresh_cache()
    animals3()  # unpacking the archive is not training time
    env = {"ZOOLENS_CACHE": cache}
    cold = run_child("train_time.py", os.path.join(cache, "cold"), env=env)
    warm = run_child("train_time.py", os.path.join(cache, "warm"), env=env)
    print(json.dumps({"benchmark": "train_time", "dataset": "animals3", "images": 3000, "cold_cache": cold,
                      "warm_cache": warm, "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
