"""One progress view for long work, honest wherever it is shown: in a terminal, a live tqdm bar with the rate and
the time left; anywhere else (a log file, CI, a notebook's captured output, a pipe), plain timestamped lines
logged at most every `PLAIN_EVERY_S` seconds and once at the end, instead of carriage-return frames that such
output either drops or shows as one garbled line."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

log = logging.getLogger("zoolens")

PLAIN_EVERY_S = 10.0

_SHOWN: ContextVar[bool] = ContextVar("zoolens_progress_shown", default=True)


def shown() -> bool:
    """Whether the work under way shows its progress (bars and step lines): yes unless a caller said otherwise
    (`showing(False)`: a run without a progress view, `--quiet`)."""
    return _SHOWN.get()


@contextmanager
def showing(enabled: bool) -> Iterator[None]:
    """While inside: the progress bars made below `progress_bar(enabled=None)` shown or not."""
    token = _SHOWN.set(enabled)
    try:
        yield
    finally:
        _SHOWN.reset(token)


class ProgressView:
    """The one progress view of a run, given to it as a callback (training.run.Callback's events): each step's
    lines logged at INFO (the CLI shows them on stderr), and the bars of the work below it shown. A run without
    it logs and draws nothing of its progress (`train(progress=False)`, `zoolens train --quiet`)."""

    shows_progress = True

    def on_note(self, message: str) -> None:
        log.info(message)


def in_a_terminal() -> bool:
    """Whether the progress output (stderr) is a terminal that redraws a line."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def progress_bar(total: int | None, desc: str, unit: str = "img", enabled: bool | None = True, leave: bool = False,
                 initial: int = 0):
    """A bar (tqdm's interface: update, set_postfix_str, set_postfix, write, close; a context manager); `initial`:
    what an earlier run had already done (a resumed training's epochs), not counted in the rate; `enabled=None`:
    as the caller's `showing` says."""
    if enabled is None:
        enabled = shown()
    if enabled and in_a_terminal():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True,
                    initial=initial)
    return PlainProgress(total, desc, unit, enabled, initial)


class PlainProgress:
    """Timestamped lines for output that is not a terminal: `12:03:05 features 1200/6500 img, 140 img/s, about
    38 s left`, every PLAIN_EVERY_S seconds and at the end."""

    def __init__(self, total: int | None, desc: str, unit: str = "img", enabled: bool = True, initial: int = 0):
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.n, self.initial, self.postfix = initial, initial, ""
        self.started = self.last_line = time.monotonic()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.enabled and time.monotonic() - self.last_line >= PLAIN_EVERY_S:
            self._line()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def write(self, text: str, file=None) -> None:
        """A line that must be seen whether or not progress is shown (tqdm.write's place): a skipped photo."""
        log.warning(text)

    def close(self) -> None:
        if self.enabled and not self.closed and self.n > self.initial:
            self._line(finished=True)
        self.closed = True

    def _line(self, finished: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        done = (f"{self.n}/{self.total}" if self.total else f"{self.n}") + (
            f" ({self.n - self.initial} this run)" if self.initial else "")
        if finished:
            timing = f"done in {elapsed:.0f} s" + (f", {rate:.1f} {self.unit}/s" if rate else "")
        else:
            left = (self.total - self.n) / rate if rate and self.total else None
            timing = f"{rate:.1f} {self.unit}/s" + (f", about {left:.0f} s left" if left is not None else "")
        extra = f"; {self.postfix}" if self.postfix else ""
        log.info("%s %s %s %s, %s%s", time.strftime("%H:%M:%S"), self.desc, done, self.unit, timing, extra)
        self.last_line = time.monotonic()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tracked(items, total: int | None, desc: str, unit: str = "img", enabled: bool | None = True):
    """`items`, one by one, counted on a progress bar."""
    with progress_bar(total, desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update(1)
