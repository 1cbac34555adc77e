"""Whole commands, cold process start to exit: `zoolens --help`, `--version`, `zoolens models`, a mistyped command
and a sub-command's help, each beside the bare interpreter importing only NumPy, Pillow and ONNX Runtime, measured
in the same run and given as a ratio to it. Prints one JSON object.

    .venv/bin/python benchmarks/command_start.py

"cold" is the first run with an empty bytecode cache (PYTHONPYCACHEPREFIX pointing at a new folder: every module
compiled again, as after an install); "warm" is the median of REPEATS runs after it. The commands alternate with
the bare interpreter run by run, so that other work on the machine weighs on both alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 7
# The installed `zoolens` script, as people run it.
ZOOLENS = [str(Path(sys.executable).with_name("zoolens"))]
BARE = [sys.executable, "-c", "import numpy, PIL.Image, onnxruntime"]
COMMANDS = {
    "help": ["--help"],
    "version": ["--version"],
    "models": ["models"],
    "mistyped_command": ["trian"],
    "train_help": ["train", "--help"],
}


def seconds(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - started


def measure(command: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="zoolens-pycache-") as empty:
        cold_env = {**os.environ, "PYTHONPYCACHEPREFIX": empty}
        cold, bare_cold = seconds(command, cold_env), seconds(BARE, cold_env)
    warm, bare_warm = [], []
    for _ in range(REPEATS):
        warm.append(seconds(command, dict(os.environ)))
        bare_warm.append(seconds(BARE, dict(os.environ)))
    warm_s, bare_s = statistics.median(warm), statistics.median(bare_warm)
    return {"cold_s": round(cold, 3), "bare_cold_s": round(bare_cold, 3), "cold_ratio": round(cold / bare_cold, 2),
            "warm_s": round(warm_s, 3), "bare_warm_s": round(bare_s, 3), "warm_ratio": round(warm_s / bare_s, 2)}


def heavy_imports(arguments: list[str]) -> list[str]:
    """The heavy libraries a command loads (none is the point)."""
    probe = ("import sys, runpy\nsys.argv = ['zoolens', *sys.argv[1:]]\ntry:\n"
             "    runpy.run_module('zoolens.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('heavy:', ' '.join(m for m in ('torch', 'torchvision', 'lightning', 'sklearn', 'matplotlib', "
             "'scipy', "
             "'pandas', 'timm', 'captum') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True)
    return result.stderr.strip().splitlines()[-1].split()[1:]


def main() -> None:
    os.chdir(Path(__file__).resolve().parents[1])
    results = {name: {**measure(ZOOLENS + arguments), "heavy_imports": heavy_imports(arguments)}
               for name, arguments in COMMANDS.items()}
    print(json.dumps({"benchmark": "command_start", "repeats": REPEATS, "bare": " ".join(BARE[1:]),
                      "commands": results}))


if __name__ == "__main__":
    main()
