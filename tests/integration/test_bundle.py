"""Model files from strangers: clear errors, and no code from the file ever runs."""

import json
import pickle
import shutil

import pytest

from zoolens.errors import ZoolensError
from zoolens.inference.model import Model


@pytest.fixture
def bundle_copy(trained_model, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(trained_model.path, target)
    return target


class WritesMarker:
    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_payload_is_refused_and_never_run(bundle_copy, tmp_path):
    marker = tmp_path / "pwned"
    WritesMarker.marker = marker
    (bundle_copy / "model.safetensors").write_bytes(pickle.dumps({"weights": WritesMarker()}))
    with pytest.raises(ZoolensError, match="safetensors"):
        Model.load(bundle_copy)
    assert not marker.exists()


def test_truncated_weights(bundle_copy):
    weights = bundle_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ZoolensError, match="model.safetensors"):
        Model.load(bundle_copy)


def test_class_count_that_does_not_match_the_weights(bundle_copy):
    meta = json.loads((bundle_copy / "zoolens.json").read_text())
    meta["classes"].append("zebra")
    (bundle_copy / "zoolens.json").write_text(json.dumps(meta))
    with pytest.raises(ZoolensError, match="do not match"):
        Model.load(bundle_copy)


def test_unknown_backbone(bundle_copy):
    meta = json.loads((bundle_copy / "zoolens.json").read_text())
    meta["backbone"]["name"] = "no_such_net_v9"
    (bundle_copy / "zoolens.json").write_text(json.dumps(meta))
    with pytest.raises(ZoolensError, match="unknown backbone"):
        Model.load(bundle_copy)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ZoolensError, match="not a zoolens model"):
        Model.load(tmp_path)
    (tmp_path / "zoolens.json").write_text("{not json")
    with pytest.raises(ZoolensError, match="unreadable"):
        Model.load(tmp_path)


def test_saving_over_a_folder_that_is_not_a_model_is_refused(trained_model, tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ZoolensError, match="not a zoolens model"):
        Model.load(trained_model.path).save(precious)
    assert (precious / "holiday.jpg").read_bytes() == b"precious"
