"""Help, usage errors, `--version` and `zoolens models` answer without loading the heavy libraries: what they print
needs none of them, and PyTorch alone takes seconds to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "lightning", "sklearn", "matplotlib", "scipy", "pandas", "timm", "captum",
         "onnxruntime", "streamlit", "optuna", "ray")

# Runs the program as `zoolens ARGS`, then names the heavy modules it loaded, on the last line of stderr.
PROBE = f"""
import runpy, sys
sys.argv = ["zoolens", *sys.argv[1:]]
try:
    runpy.run_module("zoolens.cli", run_name="__main__")
except SystemExit as done:
    code = done.code
print("exit", code, "heavy:", *[m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)
"""


def run_probe(*arguments: str) -> tuple[str, str, list[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True, text=True, timeout=60)
    *said, last = result.stderr.strip().splitlines()
    words = last.split()
    assert words[0] == "exit", result.stderr
    return words[1], result.stdout + "\n".join(said), words[words.index("heavy:") + 1 :]


@pytest.mark.parametrize("arguments", [
    ["--help"], ["--version"], ["models"], ["trian"], ["train", "--help"], ["predict", "--help"],
    ["explain", "--help"], ["study", "--help"], ["web", "--help"], ["desktop", "--help"], ["dogs", "--help"],
    ["data", "inspect", "--help"], ["train"], ["train", "photos", "--out", "m", "--no-such-option"],
    ["train", "photos", "--out", "m", "--batch-size", "0"], ["train", "photos", "--out", "m", "--unfreeze", "2"],
])
def test_help_usage_errors_version_and_models_load_no_heavy_library(arguments):
    code, output, heavy = run_probe(*arguments)
    assert output.strip()  # it did answer
    assert heavy == [], f"zoolens {' '.join(arguments)} imported {heavy}"


def test_models_still_says_which_weights_are_here_without_pytorch():
    code, output, heavy = run_probe("models")
    assert code == "0" and heavy == []
    assert "mobilenet_v2" in output and "available offline" in output
    assert "baseline_cnn" in output and "seed002_baseline" not in output  # named by what it is
