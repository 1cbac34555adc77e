"""A training run as named steps with events, in the spirit of fastai's `Learner` callbacks: `train()` goes through
STEPS in order and tells every callback it was given what happens (a step starts, an epoch ends, a line for people
watching, the run ends or fails). What a run makes besides the model (figures, checkpoints, the saved folder, the
progress view) is done by callbacks of its own; a user's callback sees the same events:

    from zoolens.training.run import Callback

    class Losses(Callback):
        def on_epoch_end(self, row):
            print(row["phase"], row["epoch"], row["val_loss"])

    zoolens.train("photos/", "model/", callbacks=[Losses()])

A callback that raises stops the run there; nothing is published into `out` before the "save" step. A run resumed
from its checkpoint tells `on_epoch_end` the restored epochs' rows first, as its training step starts, so that a
callback sees every epoch of the model once, in the order trained (the row history.csv gets).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

STEPS = ("split", "features", "training", "calibration", "open-set check", "evaluation", "save")
TRAINING = "training"  # the step whose start replays a resumed run's restored epochs


class Callback:
    """What a run tells its callbacks; override the events wanted, each does nothing here. `run` (at
    `on_run_start`) is the run's state as it grows: config, out, photos, history, model, evaluation."""

    shows_progress = False  # a progress view: the bars of the work below the run are shown while it runs

    def on_run_start(self, run: Any) -> None: ...

    def on_step_start(self, step: str) -> None: ...

    def on_note(self, message: str) -> None:
        """A line for people watching the run (what the progress view logs)."""

    def on_epoch_end(self, row: dict) -> None:
        """One epoch's history row (the row history.csv gets), as the epoch ends."""

    def on_evaluation(self, evaluation: Any) -> None:
        """The test part's class probabilities are known (its answers are not yet): figures can start."""

    def on_step_end(self, step: str) -> None: ...

    def on_run_end(self, result: Any) -> None: ...

    def on_run_error(self, error: BaseException) -> None:
        """The run failed or a callback stopped it; clean up what `on_run_start` began."""


class Events:
    """The run's callbacks, told each event in the order they were given."""

    def __init__(self, callbacks: Iterable[Any] = ()):
        self.callbacks = list(callbacks)
        self.run: Any = None  # the run's state, from `running`

    @property
    def shows_progress(self) -> bool:
        return any(getattr(callback, "shows_progress", False) for callback in self.callbacks)

    def emit(self, event: str, *args) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(*args)

    def note(self, message: str) -> None:
        self.emit("on_note", message)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        log.debug("training step %s", name)
        self.emit("on_step_start", name)
        if name == TRAINING:
            self.replay_restored_epochs()
        yield
        self.emit("on_step_end", name)

    def replay_restored_epochs(self) -> None:
        """`on_epoch_end` for each epoch the run's checkpoints (`run.checkpoints`, started by the `on_step_start` of
        the training step) read back from disk: the training loop goes on after them and tells only the new ones."""
        checkpoints = getattr(self.run, "checkpoints", None)
        for row in getattr(checkpoints, "restored", ()):
            self.emit("on_epoch_end", row)

    @contextmanager
    def running(self, run: Any) -> Iterator[None]:
        """`on_run_start`, then `on_run_error` for every callback when the run fails (all of them, even when one of
        them fails too: each cleans up its own)."""
        self.run = run
        self.emit("on_run_start", run)
        try:
            yield
        except BaseException as error:
            for callback in self.callbacks:
                handler = getattr(callback, "on_run_error", None)
                if handler is not None:
                    try:
                        handler(error)
                    except Exception:  # noqa: BLE001 - the run's own error is the one to raise
                        log.debug("on_run_error of %r failed", callback, exc_info=True)
            raise
