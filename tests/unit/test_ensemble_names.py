"""An ensemble's name ("mobilenet_v2+efficientnet_lite2") and `--preset best`, checked before any work: a wrong member,
fine-tuning an ensemble or a setting the preset chooses is refused in one line naming it."""

import pytest

from zoolens.errors import ConfigError
from zoolens.training.config import PRESETS, TrainConfig


@pytest.mark.parametrize("backbone, named", [
    ("mobilenet_v2+efficientnet_lite9", "'efficientnet_lite9' in 'mobilenet_v2+efficientnet_lite9' is not a backbone"),
    ("mobilenet_v2++efficientnet_lite2", "an empty member"),
    ("mobilenet_v2+mobilenet_v2", "'mobilenet_v2' is twice"),
])
def test_a_bad_member_is_refused_in_one_line_listing_the_backbones(backbone, named):
    with pytest.raises(ConfigError) as refused:
        TrainConfig(backbone=backbone).validate()
    message = str(refused.value)
    assert refused.value.field == "backbone"
    assert named in message and "\n" not in message
    if "not a backbone" in named:
        assert all(name in message for name in ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2"))


def test_an_ensemble_trains_frozen_only():
    TrainConfig(backbone="mobilenet_v2+efficientnet_lite2").validate()
    with pytest.raises(ConfigError) as refused:
        TrainConfig(backbone="mobilenet_v2+efficientnet_lite2", strategy="finetune").validate()
    assert refused.value.field == "strategy" and "trains frozen" in str(refused.value)


def test_the_best_preset_sets_its_recipe_and_keeps_the_split():
    best, default = TrainConfig(preset="best"), TrainConfig()
    assert best.backbone == PRESETS["best"]["backbone"] and "+" in best.backbone
    assert (best.ratios, best.seed, best.group_by) == (default.ratios, default.seed, default.group_by)
    assert best.to_dict()["preset"] == "best"
    with pytest.raises(ConfigError) as refused:
        TrainConfig(preset="best", backbone="efficientnet_lite0")
    assert refused.value.field == "backbone" and "preset" in str(refused.value)


def test_the_command_line_refuses_a_bad_member_in_one_line(capsys, tmp_path):
    from zoolens.cli.program import main

    (tmp_path / "photos").mkdir()
    assert main(["train", str(tmp_path / "photos"), "--out", str(tmp_path / "model"),
                 "--backbone", "mobilenet_v2+nope"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--backbone" in err and "'nope'" in err and "efficientnet_lite2" in err
