"""Progress that tells the truth: a live bar in a terminal; elsewhere (logs, CI, notebooks) plain timestamped
lines with the rate and the time left; and a training run that says at once what it does and ends with its result
in words and the next command."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from zoolens import progress


def test_outside_a_terminal_progress_is_timestamped_lines_with_rate_and_time_left(monkeypatch, caplog):
    monkeypatch.setattr(progress, "in_a_terminal", lambda: False)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a line at every update
    with caplog.at_level(logging.INFO, logger="zoolens"):
        with progress.progress_bar(4, "features", "img") as bar:
            bar.update(1)
            bar.set_postfix_str("best 0.41")
            bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"\d\d:\d\d:\d\d features 1/4 img, [\d.]+ img/s, about \d+ s left", lines[0]), lines
    assert lines[1].endswith("; best 0.41") and "2/4" in lines[1]
    assert re.fullmatch(r"\d\d:\d\d:\d\d features 2/4 img, done in \d+ s, [\d.]+ img/s; best 0.41", lines[-1])


def test_outside_a_terminal_lines_are_spaced_out(monkeypatch, caplog):
    monkeypatch.setattr(progress, "in_a_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="zoolens"):
        list(progress.tracked(range(1000), 1000, "checking photos"))  # far faster than one line's interval
    assert len(caplog.records) == 1 and "1000/1000 img, done in" in caplog.records[0].getMessage()


def test_in_a_terminal_it_is_tqdms_bar(monkeypatch):
    monkeypatch.setattr(progress, "in_a_terminal", lambda: True)
    bar = progress.progress_bar(10, "features")
    assert type(bar).__module__.startswith("tqdm")
    bar.close()


@pytest.mark.slow
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
