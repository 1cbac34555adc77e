"""The dog-breed app's names: Imagewoof's ids get their breed names (ImageNet categories), and its dingo lies outside
the seeds' dog classes. The app with a breed model: tests/integration/test_dogs.py."""

from helpers import IMAGEWOOF_BREEDS

from zoolens.data.class_names import readable_names
from zoolens.inference.imagenet import imagenet_categories


def test_imagewoofs_ids_get_their_breed_names_which_are_imagenet_categories(imagewoof):
    ids = sorted(p.name for p in (imagewoof / "train").iterdir())
    assert readable_names(imagewoof, ids) == IMAGEWOOF_BREEDS
    assert set(IMAGEWOOF_BREEDS.values()) <= set(imagenet_categories())


def test_imagewoofs_dingo_lies_outside_the_seeds_dog_classes():
    from zoolens.inference.imagenet import DOG_CLASSES

    assert imagenet_categories().index(IMAGEWOOF_BREEDS["n02115641"]) == 273 not in DOG_CLASSES
