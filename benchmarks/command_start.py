"""Whole commands, cold process start to exit: `zoolens --help`, `--version`, `zoolens models`, a mistyped command,
a sub-command's help, and `zoolens predict` of one photo (by the `make demo` model, and by the ImageNet classes), each
beside the bare interpreter importing only NumPy, Pillow and ONNX Runtime, measured in the same run and given as a
ratio to it. Prints one JSON object.

    make demo   # the model runs/demo, and the backbone's ONNX file in the cache (exported once per machine)
    .venv/bin/python benchmarks/command_start.py

The photo predicted is new to the feature cache at every run (chelsea, the cat, with one pixel drawn at random), so
the network runs each time; "predict_seen_photo" asks again about one photo, which the cache answers.

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
MODEL = Path("runs/demo")
SCRATCH = Path(tempfile.mkdtemp(prefix="zoolens-command-start-"))


def new_photo() -> str:
    """chelsea (a cat) with one pixel drawn at random: a photo no feature cache has seen."""
    import numpy as np
    from PIL import Image
    from skimage import data

    pixels = data.chelsea().copy()
    pixels[0, 0] = np.random.default_rng().integers(0, 256, 3)
    Image.fromarray(pixels).save(SCRATCH / "cat.png")
    return str(SCRATCH / "cat.png")


COMMANDS = {
    "help": lambda: ["--help"],
    "version": lambda: ["--version"],
    "models": lambda: ["models"],
    "mistyped_command": lambda: ["trian"],
    "train_help": lambda: ["train", "--help"],
    "predict_new_photo": lambda: ["predict", str(MODEL), new_photo()],
    "predict_seen_photo": lambda: ["predict", str(MODEL), str(SCRATCH / "cat.png")],
    "predict_imagenet_new_photo": lambda: ["predict", "--imagenet", new_photo()],
}


def seconds(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - started


def measure(arguments) -> dict:
    """`arguments()` makes each run's command line (untimed)."""
    with tempfile.TemporaryDirectory(prefix="zoolens-pycache-") as empty:
        cold_env = {**os.environ, "PYTHONPYCACHEPREFIX": empty}
        cold, bare_cold = seconds(ZOOLENS + arguments(), cold_env), seconds(BARE, cold_env)
    warm, bare_warm = [], []
    for _ in range(REPEATS):
        warm.append(seconds(ZOOLENS + arguments(), dict(os.environ)))
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
    if not (MODEL / "zoolens.json").exists():
        sys.exit(f"{MODEL}: no model; run `make demo` first")
    for name, arguments in COMMANDS.items():  # each network exported to ONNX once per machine, not timed
        if name.startswith("predict"):
            subprocess.run(ZOOLENS + arguments(), capture_output=True, check=True)
    results = {name: {**measure(arguments), "heavy_imports": heavy_imports(arguments())}
               for name, arguments in COMMANDS.items()}
    print(json.dumps({"benchmark": "command_start", "repeats": REPEATS, "bare": " ".join(BARE[1:]),
                      "commands": results}))


if __name__ == "__main__":
    main()
