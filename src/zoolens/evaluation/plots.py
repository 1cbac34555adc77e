"""The figures people look at: training curves, confusion matrix, misclassified photos."""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from zoolens import plotting
from zoolens.data.images import open_image
from zoolens.errors import ImageError
from zoolens.plotting import plain_text, save_figure


@plain_text
def plot_training_curves(history: list[dict], path: Path) -> Path:
    """Training and validation accuracy and loss per epoch (seed 000's figure 1), phases in sequence."""
    from matplotlib.ticker import MaxNLocator

    figure, (ax_acc, ax_loss) = plotting.plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(1, len(history) + 1)
    for key, axis, title in (("acc", ax_acc, "Accuracy"), ("loss", ax_loss, "Loss")):
        axis.plot(x, [row[f"train_{key}"] for row in history], marker="o", ms=3, label=f"training {key}")
        axis.plot(x, [row[f"val_{key}"] for row in history], marker="o", ms=3, label=f"validation {key}")
        axis.set_title(f"Training and validation {title.lower()}")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(title.lower())
        axis.grid(alpha=0.3)
        phases = [row["phase"] for row in history]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                axis.axvline(i + 0.5, color="grey", ls="--", lw=1)
                axis.text(i + 0.6, axis.get_ylim()[1], phases[i], va="top", fontsize=8, color="grey")
        axis.legend()
    return save_figure(figure, path)


@plain_text
def plot_confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path, normalize: bool = False) -> Path:
    size = max(4.5, 0.6 * len(classes) + 2.5)
    figure, axis = plotting.plt.subplots(figsize=(size, size))
    values = matrix / np.maximum(matrix.sum(1, keepdims=True), 1) if normalize else matrix
    _draw_matrix(axis, values, classes, ".2f" if normalize else "d")
    axis.set_title("Confusion matrix" + (" (share of each true class)" if normalize else " (photos)"))
    return save_figure(figure, path)


def _draw_matrix(axis, values: np.ndarray, classes: list[str], value_format: str) -> None:
    """scikit-learn's ConfusionMatrixDisplay, drawn here so that a figure does not import scikit-learn (1.3 s, see
    metrics.py): each cell shaded and numbered, in the colour that stands out on its shade."""
    image = axis.imshow(values, interpolation="nearest", cmap="Blues")
    darkest, palest = image.cmap(1.0), image.cmap(0)
    middle = (values.max() + values.min()) / 2.0
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, format(value, value_format), ha="center", va="center",
                  color=darkest if value < middle else palest)
    ticks = np.arange(len(classes))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes, xlabel="Predicted label",
             ylabel="True label", ylim=(len(classes) - 0.5, -0.5))
    for label in axis.get_xticklabels():
        label.set_rotation(45)


TILE, PHOTO, MARGIN = 330, 300, 12  # pixels: a photo's column, the square its photo fits in, the edges
CAPTION_SIZE, TITLE_SIZE = 14, 19


def plot_image_grid(items: list[tuple[str, str]], path: Path, title: str, columns: int = 5) -> Path | None:
    """`items` are (image path, caption); unreadable photos are shown as a blank tile.

    Laid out with Pillow rather than Matplotlib: photos and lines of text need no axes, and Matplotlib took 0.5 s
    to lay out and draw a grid of 8 photos (its import another 0.5-0.9 s), Pillow 0.05 s."""
    if not items:
        return None
    caption_lines = max(caption.count("\n") + 1 for _, caption in items)
    row_height = caption_lines * (CAPTION_SIZE + 4) + 6 + PHOTO + MARGIN
    top = TITLE_SIZE + 2 * MARGIN
    canvas = Image.new("RGB", (columns * TILE, top + math.ceil(len(items) / columns) * row_height), "white")
    draw = ImageDraw.Draw(canvas)
    _centred(draw, canvas.width / 2, MARGIN, title, _font(TITLE_SIZE), canvas.width - 2 * MARGIN)
    caption_font = _font(CAPTION_SIZE)
    bottom = top
    for n, (image_path, caption) in enumerate(items):
        x, y = (n % columns) * TILE, top + (n // columns) * row_height
        for line_number, line in enumerate(caption.split("\n")):
            _centred(draw, x + TILE / 2, y + line_number * (CAPTION_SIZE + 4), line, caption_font, TILE - 8)
        try:
            photo = ImageOps.contain(open_image(image_path, min_side=PHOTO), (PHOTO, PHOTO))  # up or down to fit
        except ImageError:
            photo = Image.new("RGB", (PHOTO, PHOTO), "white")
        photo_top = y + caption_lines * (CAPTION_SIZE + 4) + 6
        canvas.paste(photo, (x + (TILE - photo.width) // 2, photo_top))
        bottom = max(bottom, photo_top + photo.height)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.crop((0, 0, canvas.width, bottom + MARGIN)).save(path, compress_level=1)
    return path


def _centred(draw: ImageDraw.ImageDraw, centre: float, top: float, text: str, font, width: int) -> None:
    """One line of text centred on `centre`, cut short with an ellipsis where it is wider than `width`."""
    while len(text) > 1 and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    draw.text((centre, top), text, fill="black", font=font, anchor="ma")


@functools.cache
def _font(size: int):
    """DejaVu Sans, the font of the other figures (Matplotlib's own copy, found without importing Matplotlib)."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            return ImageFont.truetype(str(Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
        except OSError:
            pass
    return ImageFont.load_default(size)
