"""The figures people look at: training curves, confusion matrix, misclassified photos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from zoolens.data.images import open_image
from zoolens.errors import ImageError
from zoolens.plotting import plain_text, plt, save_figure


@plain_text
def plot_training_curves(history: list[dict], path: Path) -> Path:
    """Training and validation accuracy and loss per epoch (seed 000's figure 1), phases in sequence."""
    figure, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
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
    figure, axis = plt.subplots(figsize=(size, size))
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


@plain_text
def plot_image_grid(items: list[tuple[str, str]], path: Path, title: str, columns: int = 5) -> Path | None:
    """`items` are (image path, caption); unreadable photos are shown as a blank tile."""
    if not items:
        return None
    rows = math.ceil(len(items) / columns)
    # constrained layout keeps the title above the captions of a single row of tall photos
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), squeeze=False, layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image_path, caption) in zip(axes.flat, items):
        try:
            image = open_image(image_path, min_side=256)
            image.thumbnail((256, 256))
            axis.imshow(image)
        except ImageError:
            pass
        axis.set_title(caption, fontsize=9)
    figure.suptitle(title)
    return save_figure(figure, path, tight=False)
