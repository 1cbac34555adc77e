"""The fine-tuning recipe's pieces (training/recipe.py) that need no network: `--strategy recipe` resolves to a warmed
head and a phase with every step on, the schedule warms up then follows a cosine, and small photos are enlarged.
integration/test_finetune_recipe.py has the rest: the rates block by block, the mixing, a recipe phase and a run."""

import math
from dataclasses import replace

import pytest
import torch
from PIL import Image

from zoolens.training.config import RECIPE, TrainConfig
from zoolens.training.recipe import sized_for_photos, warmup_cosine


def test_the_recipe_strategy_warms_the_head_then_fine_tunes_with_every_step_on():
    head, tuned = TrainConfig(strategy="recipe").phases()
    assert (head.name, head.on, tuned.name, tuned.on) == ("head", "features", "finetune", "photos")
    assert head.recipe == tuned.recipe == RECIPE  # the head warms with the recipe's label smoothing
    assert tuned.unfreeze == 0 and tuned.must_beat_start and tuned.epochs == RECIPE.epochs
    assert RECIPE.label_smoothing > 0 and RECIPE.mix_share > 0 and RECIPE.mixup_alpha > 0 and RECIPE.cutmix_alpha > 0
    assert 0 < RECIPE.layer_decay < 1 and 0 < RECIPE.warmup < 1 and 0 < RECIPE.ema_decay < 1
    assert TrainConfig(strategy="recipe").to_dict()["strategy"] == "recipe"
    assert tuned.to_dict()["recipe"]["layer_decay"] == RECIPE.layer_decay  # recorded in zoolens.json
    # --lr, --epochs and --label-smoothing set the recipe's
    _, asked = TrainConfig(strategy="recipe", lr=5e-4, epochs=2, label_smoothing=0.2).phases()
    assert (asked.recipe.lr, asked.epochs, asked.recipe.label_smoothing) == (5e-4, 2, 0.2)


def test_the_schedule_warms_up_linearly_then_follows_a_cosine_in_every_group():
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": [weights[0]], "lr": 1e-3}, {"params": [weights[1]], "lr": 1e-5}])
    schedule = warmup_cosine(optimizer, total_steps=50, warmup=0.2)
    seen = []
    for _ in range(50):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    warm = 10
    for step, (head, first) in enumerate(seen):
        factor = (0.01 + 0.99 * step / warm if step < warm
                  else 0.5 * (1 + math.cos(math.pi * (step - warm) / (50 - warm))))
        assert head == pytest.approx(1e-3 * factor, rel=1e-6), step
        assert first == pytest.approx(1e-5 * factor, rel=1e-6), step


def photos(folder, side: int, count: int = 5):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (side + 8, side), (i * 40, 90, 200)).save(folder / f"{i}.png")
    return sorted(folder.iterdir())


def test_small_photos_are_enlarged_and_large_ones_keep_the_backbones_size(tmp_path):
    recipe = TrainConfig(strategy="recipe")
    assert sized_for_photos(recipe, photos(tmp_path / "cifar", 32)).image_size == 96
    assert sized_for_photos(recipe, photos(tmp_path / "tiny", 20)).image_size == 96  # never below 96 px
    assert sized_for_photos(recipe, photos(tmp_path / "small", 40)).image_size == 128  # 3 x 40, up to a multiple of 32
    assert sized_for_photos(recipe, photos(tmp_path / "large", 300)).image_size is None  # the backbone's 224 px
    assert sized_for_photos(replace(recipe, image_size=160), photos(tmp_path / "cifar", 32)).image_size == 160
    assert sized_for_photos(TrainConfig(strategy="finetune"), photos(tmp_path / "cifar", 32)).image_size is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.jpg").write_bytes(b"not a photo")
    assert sized_for_photos(recipe, [tmp_path / "broken" / "x.jpg"]).image_size is None
