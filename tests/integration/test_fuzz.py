"""Fuzzing the two doors strangers' bytes come through: decoding a photo and loading a model.

Bounded (a few hundred examples each, no deadline) so CI runs it in seconds; raise max_examples locally to dig."""

from __future__ import annotations

import io
import shutil

import pytest
from hardening_corpus import bomb_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoolens.data.images import open_image
from zoolens.errors import ImageError, ZoolensError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _seeds() -> list[bytes]:
    image = Image.new("RGB", (24, 16), (90, 160, 30))
    seeds = [bomb_png()]
    for fmt, options in (("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {}), ("TIFF", {})):
        buffer = io.BytesIO()
        (image.convert("P") if fmt == "GIF" else image).save(buffer, fmt, **options)
        seeds.append(buffer.getvalue())
    return seeds


SEEDS = _seeds()


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A real file with some bytes flipped, a slice cut out, or cut short: what reaches parsers' odd corners."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        data = data[:start] + data[start + draw(st.integers(0, 64)):]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _only_image_error_or_rgb(data: bytes) -> None:
    try:
        image = open_image(data)
    except ImageError:
        return
    assert image.mode == "RGB" and image.width > 0 and image.height > 0


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_image_error(data):
    _only_image_error_or_rgb(data)


@FUZZ
@given(mutated(SEEDS))
def test_mutated_images_raise_only_image_error_or_decode(data):
    _only_image_error_or_rgb(data)


@pytest.fixture(scope="module")
def model_files(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzmodel") / "model"
    shutil.copytree(trained_model.path, folder)
    return folder, (folder / "zoolens.json").read_bytes(), (folder / "model.safetensors").read_bytes()


def _load_raises_only_zoolens_error(folder) -> None:
    from zoolens.inference.model import Model

    try:
        Model.load(folder)
    except ZoolensError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_mutated_model_description_raises_only_zoolens_error(model_files, data):
    folder, meta, weights = model_files
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "zoolens.json").write_bytes(data.draw(mutated([meta])))
    _load_raises_only_zoolens_error(folder)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_mutated_weights_raise_only_zoolens_error(model_files, data):
    folder, meta, weights = model_files
    (folder / "zoolens.json").write_bytes(meta)
    header = int.from_bytes(weights[:8], "little") + 8  # mutate the JSON header and the first tensors, where parsing happens
    (folder / "model.safetensors").write_bytes(data.draw(mutated([weights[: header + 4096]])) + weights[header + 4096:])
    _load_raises_only_zoolens_error(folder)
