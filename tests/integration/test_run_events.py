"""A training run is named steps with events (training/run.py): a caller's callback sees every step in order and
every epoch row, one that raises stops the run with nothing published, and progress=False shows nothing."""

from __future__ import annotations

import csv
import logging

import pytest

import zoolens
from zoolens import progress
from zoolens.training.run import STEPS, Callback


class Recorder(Callback):
    def __init__(self):
        self.events: list[tuple] = []
        self.rows: list[dict] = []

    def on_run_start(self, run):
        self.events.append(("run start",))

    def on_step_start(self, step):
        self.events.append(("start", step))

    def on_step_end(self, step):
        self.events.append(("end", step))

    def on_epoch_end(self, row):
        self.rows.append(dict(row))

    def on_run_end(self, result):
        self.events.append(("run end", result))


class StopAt(Callback):
    def __init__(self, event: str, step: str | None = None):
        self.event, self.step = event, step

    def on_step_start(self, step):
        if self.event == "on_step_start" and step == self.step:
            raise RuntimeError(f"stopped before {step}")

    def on_epoch_end(self, row):
        if self.event == "on_epoch_end":
            raise RuntimeError("stopped at the first epoch")


def test_a_callback_sees_every_step_in_order_and_every_epoch_row(small_animals, tmp_path):
    recorder = Recorder()
    out = tmp_path / "model"
    model = zoolens.train(small_animals, out, progress=False, epochs=4, callbacks=[recorder])
    steps = [event for event in recorder.events if event[0] in ("start", "end")]
    assert steps == [(kind, step) for step in STEPS for kind in ("start", "end")]
    assert STEPS == ("split", "features", "training", "calibration", "open-set check", "evaluation", "save")
    assert recorder.events[0] == ("run start",) and recorder.events[-1] == ("run end", model)
    with open(out / "history.csv", newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert len(recorder.rows) == len(written) == len(model.history) > 0
    assert [{k: str(v) for k, v in row.items()} for row in recorder.rows] == written


@pytest.mark.parametrize("stop", [pytest.param(StopAt("on_epoch_end"), id="at an epoch"),
                                  pytest.param(StopAt("on_step_start", "save"), id="before saving",
                                               marks=pytest.mark.slow)])
def test_a_callback_that_raises_stops_the_run_with_nothing_published(small_animals, tmp_path, stop):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError, match="stopped"):
        zoolens.train(small_animals, out, progress=False, epochs=3, callbacks=[stop])
    assert not out.exists()  # a checkpoint of finished epochs may stay in model.partial/, for resume=True


def test_without_progress_a_run_logs_and_prints_nothing(small_animals, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setattr(progress, "in_a_terminal", lambda: False)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a bar would log a line at every update
    caplog.set_level(logging.INFO, logger="zoolens")
    zoolens.train(small_animals, tmp_path / "quiet", progress=False, epochs=2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
    assert capsys.readouterr() == ("", "")
    zoolens.train(small_animals, tmp_path / "shown", epochs=2)  # the progress view: its step lines and bars
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("training the head (") for m in messages)
    assert any(" head 2/2 epoch" in m for m in messages)
    assert any(m.startswith(f"saved {tmp_path / 'shown'} in ") for m in messages)
