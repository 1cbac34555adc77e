"""The public surface as a notebook user meets it: every exported name resolves, `dir(zoolens)` and `help` show
them, `list_backbones()` says what `zoolens models` prints. The predictors themselves:
tests/integration/test_public_api.py."""

from __future__ import annotations

import pytest

import zoolens
from zoolens.cli import main
from zoolens.inference.predictor import Predictor

OFFLINE_BACKBONES = {"mobilenet_v2": 224, "efficientnet_lite0": 224, "efficientnet_lite1": 240,
                     "efficientnet_lite2": 260}


# ---- the names --------------------------------------------------------------------------------------------------
def test_every_exported_name_resolves_and_star_import_gives_them():
    for name in zoolens.__all__:
        assert getattr(zoolens, name) is not None, name
    namespace: dict = {}
    exec("from zoolens import *", namespace)
    assert set(zoolens.__all__) <= set(namespace)
    assert namespace["list_backbones"] is zoolens.list_backbones and namespace["Predictor"] is Predictor


def test_dir_shows_the_public_api():
    shown = dir(zoolens)
    assert {"train", "Model", "list_backbones", "Predictor", "ImageNetClassifier"} <= set(shown)
    assert set(zoolens.__all__) <= set(shown) and shown == sorted(shown)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        zoolens.trian  # noqa: B018


def test_help_lists_every_public_name():
    import pydoc

    text = pydoc.render_doc(zoolens, renderer=pydoc.plaintext)
    for name in zoolens.__all__:
        assert (name if name != "__version__" else f"VERSION\n    {zoolens.__version__}") in text, name
    assert "zoolens.list_backbones()" in text.split("PACKAGE CONTENTS")[0]  # the guide comes first


# ---- the backbones ----------------------------------------------------------------------------------------------
def test_list_backbones_names_the_offline_ones_installed_here():
    records = {record.name: record for record in zoolens.list_backbones()}
    for name, size in OFFLINE_BACKBONES.items():
        record = records[name]
        assert record.pretrained and record.installed and not record.downloadable, record
        assert record.input_size == size and record.weights == "available offline"
        assert repr(record).startswith(f"<backbone {name}: ") and "weights installed" in repr(record)
    scratch = records["small_cnn"]
    assert (scratch.source, scratch.pretrained, scratch.installed, scratch.input_size) == ("zoolens", False, False, 150)
    assert "no pretrained weights" in repr(scratch)
    assert list(records)[: len(OFFLINE_BACKBONES)] == list(OFFLINE_BACKBONES)  # the pretrained ones first
    assert repr(zoolens.list_backbones()).splitlines() == [repr(record) for record in records.values()]


def test_list_backbones_says_what_zoolens_models_prints(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for record in zoolens.list_backbones():
        line = next(line for line in lines if line.split()[:1] == [record.name])
        assert line.split()[1:3] == [record.source, str(record.input_size)] and line.endswith(record.weights), line
