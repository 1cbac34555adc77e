"""What every zoolens figure shares: drawn off-screen (Agg), saved the same way, and its texts taken literally.

Texts come from people's folders and from model files (class names, file names): Matplotlib would read
`$\\undefinedmacro$` in one as mathtext and fail while saving (it crashed `train` after the weights were
written). `plain_text` turns mathtext off for the figure a function draws, without changing the rest of the
process's Matplotlib settings. Matplotlib itself is imported on first use (`plt`), not with this module."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

__all__ = ["FigureDrawer", "plain_text", "plt", "save_figure"]  # noqa: F822 (plt: on first use)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def __getattr__(name: str):
    if name == "plt":
        return _pyplot()
    raise AttributeError(name)


def plain_text(draw):
    """Decorator: the texts `draw` creates (titles, labels, and the tick labels drawn while saving) are plain text."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def save_figure(figure, path: Path) -> Path:
    """Cropped to what is drawn. PNGs are compressed at zlib level 1: a Matplotlib grid of photos took 0.28 s to
    encode at Pillow's default 6, a third of that figure's time, for files about 10 % smaller."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight", pil_kwargs={"compress_level": 1})
    _pyplot().close(figure)
    return path


def _draw_by_name(name: str, args: tuple):
    """Call the figure function "module:function" (a name: the process asking need not import Matplotlib)."""
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)(*args)


def _figure_process_start() -> None:
    import os
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no traceback from here
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _pyplot()


def _exit_with_parent(parent: int) -> None:
    """The drawing process ends when the process it draws for is gone, even killed at once (SIGKILL), when the pool's
    own shutdown never comes: it would otherwise wait for work forever."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


class _Drawn:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class FigureDrawer:
    """Draws figures in a process of its own, started before they are asked for: importing Matplotlib (0.5-0.9 s on
    2 cores) and drawing then overlap with the work before them (training, evaluating) instead of adding to it. With
    `separate` False (off the main thread, where forking is unsafe), off Linux, or once that process is lost, figures
    are drawn here, when asked. `draw` returns something whose `result()` is the function's."""

    def __init__(self, separate: bool = True):
        import multiprocessing

        self._pool = None
        # Forked, and so only on Linux: macOS forbids forking a process that has used some of its frameworks (and
        # Python starts processes afresh there), Windows cannot fork.
        if separate and sys.platform.startswith("linux"):
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_figure_process_start)
            self._pool.submit(int)  # starts the process, which imports Matplotlib while this one goes on

    def draw(self, name: str, *args):
        """`name`: "module:function" of a figure function, called with `args`."""
        if self._pool is not None:
            try:
                return _Resilient(self._pool.submit(_draw_by_name, name, args), name, args)
            except RuntimeError:  # the process is gone (BrokenProcessPool is a RuntimeError)
                self._pool = None
        return _Drawn(_draw_by_name(name, args))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _Resilient:
    """A figure from the drawing process; drawn here instead if that process died (killed, out of memory)."""

    def __init__(self, future, name: str, args: tuple):
        self.future, self.name, self.args = future, name, args

    def result(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:
            return _draw_by_name(self.name, self.args)
