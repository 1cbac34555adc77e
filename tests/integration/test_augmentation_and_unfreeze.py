"""Training through the backbone as promised: each augmentation (rotation, shift, shear, zoom, flip) really
changes the photos it trains on, `--no-augment` trains on the plain ones, and `--unfreeze N` trains only the
backbone's last N blocks."""

from dataclasses import replace

import pytest
import torch
from PIL import Image, ImageDraw

import zoolens
from zoolens.data.transforms import Augmentation, Preprocessing, decode_for_network, eval_transform, train_transform

PREP = Preprocessing(64, 73)
NONE = Augmentation(rotation=0, shift=0, shear=0, zoom=0, horizontal_flip=False)
DRAWS = 30


def disk_photo() -> Image.Image:
    """A white disk on black, off the vertical axis so that a mirror image differs, with a bar to the left."""
    image = Image.new("RGB", (120, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((45, 25, 85, 65), fill="white")
    draw.rectangle((20, 10, 26, 80), fill="white")
    return image


def draws(augmentation: Augmentation, image: Image.Image) -> list[torch.Tensor]:
    torch.manual_seed(0)
    transform = train_transform(PREP, augmentation)
    return [transform(image) for _ in range(DRAWS)]


def bright(tensor: torch.Tensor) -> torch.Tensor:
    """The white pixels (above mid-grey once normalised: a fixed threshold, whatever moved out of the frame)."""
    return tensor.mean(0) > 0


def test_no_augmentation_trains_on_the_photos_as_evaluated():
    image = disk_photo()
    plain = eval_transform(PREP)(image)
    assert all(torch.equal(out, plain) for out in draws(NONE, image))
    assert all(torch.equal(out, plain) for out in draws(None, image))


@pytest.mark.parametrize("changed", [{"rotation": 20.0}, {"shift": 0.1}, {"shear": 10.0}, {"zoom": 0.15},
                                     {"horizontal_flip": True}])
def test_each_augmentation_changes_the_photos_on_its_own(changed):
    image = disk_photo()
    plain = eval_transform(PREP)(image)
    outputs = draws(replace(NONE, **changed), image)
    different = [out for out in outputs if not torch.allclose(out, plain, atol=1e-3)]
    assert len(different) >= DRAWS // 3, f"{changed}: {len(different)} of {DRAWS} draws changed the photo"
    assert len({tuple(out.flatten()[::97].tolist()) for out in outputs}) >= 2  # not one fixed transformation


def test_a_flip_is_the_mirror_image_and_a_zoom_scales_the_disk():
    image = disk_photo()
    plain = eval_transform(PREP)(image)
    for out in draws(replace(NONE, horizontal_flip=True), image):
        assert torch.equal(out, plain) or torch.equal(out, plain.flip(-1))
    area = float(bright(plain).sum())
    ratios = [float(bright(out).sum()) / area for out in draws(replace(NONE, zoom=0.15), image)]
    # Scaled by s in [0.85, 1.15], an area by s²; both smaller and larger draws happen.
    assert 0.85**2 - 0.05 <= min(ratios) < 0.97 and 1.03 < max(ratios) <= 1.15**2 + 0.05, ratios


def test_a_shift_moves_the_photo_by_whole_pixels_within_its_range():
    image = disk_photo()
    plain = bright(eval_transform(PREP)(image))
    # Of the resized photo, 73 x 97 before the crop: at most a tenth of its height and of its width.
    most_y, most_x = round(0.1 * 73), round(0.1 * 97)
    seen = set()
    for out in draws(replace(NONE, shift=0.1), image):
        moved = bright(out)
        best = min(((dy, dx) for dy in range(-most_y - 2, most_y + 3) for dx in range(-most_x - 2, most_x + 3)),
                   key=lambda d: int((torch.roll(plain, d, (0, 1)) != moved)[12:-12, 12:-12].sum()))
        assert int((torch.roll(plain, best, (0, 1)) != moved)[12:-12, 12:-12].sum()) == 0
        seen.add(best)
    assert len(seen) >= 5 and all(abs(dy) <= most_y and abs(dx) <= most_x for dy, dx in seen), seen


def test_training_on_photos_uses_the_augmentation_it_is_given(small_animals):
    from zoolens.data.folders import Sample
    from zoolens.runtime.distributed import Processes
    from zoolens.training.config import TrainConfig
    from zoolens.training.photos import photo_batches

    photo = sorted((small_animals / "cats").iterdir())[0]
    parts = {"train": [Sample(photo, "cats")], "val": [Sample(photo, "cats")]}
    for augmentation, varies in ((Augmentation(), True), (None, False)):
        batches = photo_batches(parts, ["cats"], PREP, TrainConfig(augmentation=augmentation, workers=0), Processes())
        torch.manual_seed(0)
        first, second = (next(iter(batches.training(epoch)))[0] for epoch in (0, 1))
        assert torch.equal(first, second) is not varies
        validation = next(iter(batches.validation()))[0]
        assert torch.equal(validation[0], eval_transform(PREP)(decode_for_network(photo, PREP)))  # as answers decode


def test_unfreeze_trains_only_the_last_blocks(small_animals, tmp_path):
    from zoolens.models.backbones import build_backbone, unfreeze_blocks

    model = zoolens.train(small_animals, tmp_path / "m", progress=False, strategy="finetune", unfreeze=2,
                          image_size=128, epochs=3)
    head = [row["val_loss"] for row in model.history if row["phase"] == "head"]
    tuned = [row["val_loss"] for row in model.history if row["phase"] == "finetune"]
    assert min(tuned) < min(head)  # a fine-tuned epoch was kept, so its blocks have moved
    pretrained = build_backbone("mobilenet_v2", pretrained=True)
    before, after = unfreeze_blocks(pretrained), unfreeze_blocks(model.network.backbone)
    assert len(before) == len(after) == 19

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    assert all(same(a, b) for a, b in zip(before[:-2], after[:-2]))  # 17 blocks exactly as pretrained
    assert not any(same(a, b) for a, b in zip(before[-2:], after[-2:]))  # the last two each changed
    assert model.evaluation.accuracy >= 0.85
