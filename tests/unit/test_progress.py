"""Progress that tells the truth: a live bar in a terminal; elsewhere (logs, CI, notebooks) plain timestamped
lines with the rate and the time left; and a training run that says at once what it does and ends with its result
in words and the next command. The tests that train or start processes: tests/integration/test_progress_training.py."""

from __future__ import annotations

import logging
import re

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
