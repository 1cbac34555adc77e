"""Studies (several runs on one split), k-fold cross validation, tuning, and the seeds' scratch models.
The tests that train or start processes: tests/integration/test_studies_runs.py."""

from collections import Counter

import pytest
import yaml

import zoolens
from zoolens.data.folders import scan_folder
from zoolens.data.split import split_folder
from zoolens.errors import ZoolensError
from zoolens.models.backbones import build_backbone
from zoolens.models.classifier import Classifier
from zoolens.studies.kfold import fold_manifests
from zoolens.studies.spec import load_study, preset_names


def write_spec(path, experiments, **extra):
    path.write_text(yaml.safe_dump({"name": "tiny", "experiments": experiments, **extra}))
    return path


def test_presets_load_with_budgets_and_fall_back_to_offline_backbones():
    assert {"pretrained-vs-scratch", "frozen-vs-unfrozen", "bottleneck-vs-scratch"} <= set(preset_names())
    assert not any(name.startswith("seed") for name in preset_names())  # named by what they compare
    study = load_study("pretrained-vs-scratch", "small")
    by_name = {e.name: e.options for e in study.experiments}
    assert by_name["resnet18-scratch"]["backbone"] == "resnet18"  # scratch needs no weights
    assert by_name["pretrained-finetuned"]["backbone"] == "mobilenet_v2"  # no offline ResNet-18 weights
    assert by_name["resnet18-scratch"]["image_size"] == 64 and by_name["resnet18-scratch"]["epochs"] == 6
    assert by_name["pretrained-finetuned"]["epochs"] == 2
    assert load_study("pretrained-vs-scratch", "full").experiments[0].options["epochs"] == 20


def test_the_presets_former_seed_names_still_work():
    for former, preset in {"seed-002": "pretrained-vs-scratch", "seed-003": "frozen-vs-unfrozen",
                           "seed-004": "bottleneck-vs-scratch"}.items():
        assert load_study(former, "small") == load_study(preset, "small")


def test_the_backbones_preset_runs_every_registered_backbone_with_weights_here(monkeypatch):
    from zoolens.models.registry import REGISTRY, BackboneSpec
    from zoolens.studies import spec as study_spec

    study = load_study("backbones", "small")
    # `make setup` installs the weights of these four; the seeds' CNNs have none.
    assert [e.name for e in study.experiments] == ["frozen-mobilenet_v2", "frozen-efficientnet_lite0",
                                                   "frozen-efficientnet_lite1", "frozen-efficientnet_lite2"]
    assert all(e.options["strategy"] == "frozen" and e.options["image_size"] == 160 for e in study.experiments)
    # A backbone declared later is in the study with no change to it (its weights faked as available here).
    resnet50 = BackboneSpec("resnet50", "torchvision", REGISTRY["mobilenet_v2"].preprocessing)
    monkeypatch.setitem(REGISTRY, "resnet50", resnet50)
    monkeypatch.setattr(study_spec, "offline_weights_available", lambda name: name in ("resnet50", "mobilenet_v2"))
    assert [e.options["backbone"] for e in load_study("backbones").experiments] == ["mobilenet_v2", "resnet50"]


@pytest.mark.parametrize("experiments, message", [
    ([{"name": "a", "colour": "red"}], "unknown option"),
    ([{"name": "a"}, {"name": "a"}], "must be unique"),
    ([{"name": "a/b"}], "letters/digits"),
    ([], "list of experiments"),
])
def test_bad_study_files_get_one_clear_error(tmp_path, experiments, message):
    with pytest.raises(ZoolensError, match=message):
        load_study(str(write_spec(tmp_path / "s.yaml", experiments)))


def test_unknown_preset_or_budget(tmp_path):
    with pytest.raises(ZoolensError, match="no such study file or preset"):
        load_study("seed-999")
    with pytest.raises(ZoolensError, match="no budget"):
        load_study("frozen-vs-unfrozen", "huge")


def test_folds_are_stratified_and_cover_every_photo_once(small_animals):
    manifest = split_folder(scan_folder(small_animals))
    folds = fold_manifests(manifest, 4, seed=0)
    pool = {s.path for s in manifest.part("train") + manifest.part("val")}
    seen = Counter(s.path for fold in folds for s in fold.part("val"))
    assert set(seen) == pool and set(seen.values()) == {1}
    for fold in folds:
        per_class = Counter(s.label for s in fold.part("val"))
        assert max(per_class.values()) - min(per_class.values()) <= 1
        assert {s.path for s in fold.part("test")} == {s.path for s in manifest.part("test")}
    with pytest.raises(ZoolensError, match="needs at least 60"):
        fold_manifests(manifest, 60, seed=0)


def test_small_cnn_has_the_parameter_count_of_its_report():
    network = Classifier(build_backbone("small_cnn", pretrained=False), 3)
    assert sum(p.numel() for p in network.parameters()) == 3_454_147  # seed 001's model summary


def test_scratch_only_models_refuse_pretrained_strategies(small_animals, tmp_path):
    with pytest.raises(ZoolensError, match="no pretrained weights"):
        zoolens.train(small_animals, tmp_path / "m", backbone="gap_cnn", strategy="frozen", progress=False)


def test_score_axis_starts_below_close_high_scores_and_at_zero_otherwise():
    from zoolens.studies.runner import _score_axis_start

    assert _score_axis_start([0.975, 0.982, 0.98]) == pytest.approx(0.90)
    assert _score_axis_start([0.44, 0.76]) == 0.0
    assert _score_axis_start([0.6, 0.99]) == 0.0
