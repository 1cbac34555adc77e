"""Shared by the benchmark scripts: real photos, a trained model, and peak memory of a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def animals3() -> Path:
    from zoolens.data.shared import ensure_shared_dataset

    return ensure_shared_dataset("animals3")


def demo_model(cache: str) -> Path:
    """A frozen MobileNetV2 model of animals3, trained once per benchmark run into a temporary folder; with
    ZOOLENS_BENCH_PRESET=best in the environment, `zoolens train --preset best`'s model instead; with
    ZOOLENS_BENCH_MODEL=FOLDER, that model folder, trained before (its backbones are exported into the fresh cache)."""
    import zoolens

    if os.environ.get("ZOOLENS_BENCH_MODEL"):
        return Path(os.environ["ZOOLENS_BENCH_MODEL"])
    out = Path(cache) / "model"
    preset = os.environ.get("ZOOLENS_BENCH_PRESET")
    if not (out / "zoolens.json").exists():
        zoolens.train(animals3(), out, progress=False, **({"preset": preset} if preset else {}))
    return out


def run_child(script: str, *args: str, env: dict | None = None) -> dict:
    """Run `script` in its own process; its last stdout line is JSON; add its peak resident memory."""
    command = [sys.executable, "-c", _PEAK_WRAPPER, str(HERE / script), *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True)
    lines = result.stdout.strip().splitlines()
    data = json.loads(lines[-2])
    data["peak_memory_mb"] = round(int(lines[-1]) / 1024, 1)
    return data


# Runs the script in this process, then prints its peak resident memory (KiB, Linux ru_maxrss) last.
_PEAK_WRAPPER = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def fresh_cache() -> str:
    return tempfile.mkdtemp(prefix="zoolens-bench-")
