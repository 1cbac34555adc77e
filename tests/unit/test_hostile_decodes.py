"""Hostile inputs the reader and the rules catch alone: a decode past its time is given up, a float TIFF keeps its
true brightness and NaN is refused, the thin-classes rule. The commands on hostile inputs:
tests/integration/test_hostile_inputs.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoolens.data.images import open_image
from zoolens.errors import ImageError


def test_a_decode_past_its_time_is_given_up():
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 30)).save(buffer, "PNG")
    with pytest.raises(ImageError, match=r"decoding took over 1e-09 s \(damaged, or padded with junk\); given up"):
        open_image(buffer.getvalue(), time_limit=1e-9)
    assert open_image(buffer.getvalue()).size == (640, 480)


def test_a_float_tiff_is_read_with_its_true_brightness_and_nan_is_refused(tmp_path):
    """Mode F, values 0-1, was read as an all-black photo and classified."""
    ramp = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (64, 1))
    Image.fromarray(ramp, mode="F").save(tmp_path / "ramp.tif")
    pixels = np.asarray(open_image(tmp_path / "ramp.tif"))
    assert pixels[:, 0].max() == 0 and pixels[:, -1].min() == 255 and abs(pixels.mean() - 127.5) < 1
    for bad in (np.nan, np.inf):
        broken = ramp.copy()
        broken[3, 3] = bad
        Image.fromarray(broken, mode="F").save(tmp_path / "bad.tif")
        with pytest.raises(ImageError, match="float image with NaN or infinite pixel values"):
            open_image(tmp_path / "bad.tif")


def test_thin_classes_rule():
    from zoolens.data.folders import Sample
    from zoolens.training.trainer import thin_classes

    def samples(counts):
        return [Sample(Path(f"{c}{i}.jpg"), c) for c, n in counts.items() for i in range(n)]

    assert thin_classes(samples({"a": 300, "b": 280, "c": 25}), ["a", "b", "c"]) == [
        "class 'c' has only 25 training photos (the others 280–300): the model will seldom if ever answer it; add "
        "photos of it, or leave it out"]
    assert thin_classes(samples({"a": 300, "b": 280, "c": 31}), ["a", "b", "c"]) == []
    assert len(thin_classes(samples({"a": 4, "b": 2}), ["a", "b"])) == 1  # under THIN_CLASS_PHOTOS
