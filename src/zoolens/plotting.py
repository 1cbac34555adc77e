"""What every zoolens figure shares: drawn off-screen (Agg), saved the same way, and its texts taken literally.

Texts come from people's folders and from model files (class names, file names): Matplotlib would read
`$\\undefinedmacro$` in one as mathtext and fail while saving (it crashed `train` after the weights were
written). `plain_text` turns mathtext off for the figure a function draws, without changing the rest of the
process's Matplotlib settings. Matplotlib itself is imported on first use (`plt`), not with this module."""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["plain_text", "plt", "save_figure"]  # noqa: F822 (plt: on first use)


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


def save_figure(figure, path: Path, tight: bool = True) -> Path:
    """`tight`: cropped to what is drawn, which draws the figure twice; a figure laid out by its own layout engine
    needs it not. PNGs are compressed at zlib level 1: a grid of photos took 0.28 s to encode at Pillow's default 6,
    a third of that figure's time, for files about 10 % smaller."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight" if tight else None, pil_kwargs={"compress_level": 1})
    _pyplot().close(figure)
    return path
