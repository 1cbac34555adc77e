"""Help, usage errors, `--version` and `zoolens models` answer without loading the heavy libraries: what they print
needs none of them, and PyTorch alone takes seconds to import."""

from __future__ import annotations

import pytest
from helpers import run_probe


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
