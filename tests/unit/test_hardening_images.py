"""The hardening corpus (tests/hardening_corpus.py) through the image reader: every readable kind becomes an upright
RGB image, every refused kind one ImageError naming the file, devices and FIFOs never block. The commands on it:
tests/integration/test_hardening.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import expected_refusals
from hardening_corpus import READABLE, make_corpus

from zoolens.data.images import open_image
from zoolens.errors import ImageError


@pytest.fixture(scope="module")
def corpus(small_animals, tmp_path_factory) -> dict[str, Path]:
    real = sorted((small_animals / "cats").glob("*.jpg"))[0].read_bytes()
    return make_corpus(tmp_path_factory.mktemp("corpus") / "bad", real)


# ---- the decoding layer ----------------------------------------------------------------------------
def test_every_readable_kind_becomes_an_upright_rgb_image(corpus):
    for kind in READABLE:
        image = open_image(corpus[kind])
        assert image.mode == "RGB", kind
    assert open_image(corpus["exif_rotated"]).size == (40, 80)  # stored 80 x 40, EXIF says rotate
    assert open_image(corpus["one_pixel"]).size == (1, 1)


def test_every_refused_kind_raises_image_error_naming_the_file(corpus):
    for kind, reason in expected_refusals().items():
        with pytest.raises(ImageError) as caught:
            open_image(corpus[kind])
        assert caught.value.path == str(corpus[kind]) and reason in caught.value.reason, (kind, caught.value)


def test_devices_and_fifos_never_block(corpus):
    for path in ("/dev/zero", "/dev/null", corpus["fifo"]):
        with pytest.raises(ImageError, match="not a regular file"):
            open_image(path)
