"""A training run's progress in a log: it says at once what it does and ends with its result in words and the next
command. The progress view alone: tests/unit/test_progress.py."""

from __future__ import annotations

import re
import subprocess
import sys


def test_training_in_a_log_says_what_it_does_at_once_and_ends_with_the_result_in_words(small_animals, tmp_path):
    out = tmp_path / "model"
    result = subprocess.run([sys.executable, "-m", "zoolens.cli", "train", str(small_animals), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)  # stderr is a pipe: not a terminal
    assert result.returncode == 0, result.stderr
    said = result.stderr.splitlines()
    assert said[0] == f"training a classifier on {small_animals} into {out}"
    assert "\r" not in result.stderr  # no bar frames in a log
    head = [line for line in said if re.match(r"\d\d:\d\d:\d\d head \d+/60 epoch, done in", line)]
    assert len(head) == 1 and "best " in head[0]  # one line for the phase, not one per epoch
    assert not [line for line in said if "head epoch" in line and "/60" in line]
    right = re.search(r"^(\d+\.\d)% right on (\d+) photos it never saw \((\d+) wrong\)", result.stdout, re.M)
    assert right and int(right[2]) == 36  # 20 % of 180 photos
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"Next: zoolens predict {out} PHOTO")
