"""Animal groups from the ImageNet classes: the table checked against the network's own names, then real photos."""

import numpy as np
import pytest

from zoolens.cli import main
from zoolens.inference.imagenet import DOG_CLASSES, imagenet_categories
from zoolens.models.imagenet_groups import ANIMAL_GROUPS, NOT_AN_ANIMAL, group_indices, group_probabilities


def test_every_range_starts_and_ends_at_the_named_imagenet_categories():
    categories = imagenet_categories()
    for group, ranges in ANIMAL_GROUPS.items():
        for r in ranges:
            assert 0 <= r.first <= r.last < 1000, group
            assert (categories[r.first], categories[r.last]) == (r.first_name, r.last_name), group


def test_groups_do_not_overlap_and_match_the_seeds_ranges():
    indices = group_indices()
    every = [i for members in indices.values() for i in members]
    assert len(every) == len(set(every))
    assert indices["dog"] == list(DOG_CLASSES) == list(range(151, 269))
    assert indices["cat"] == list(range(281, 286))
    assert indices["big cat"] == list(range(286, 294))
    assert indices["snake"] == list(range(52, 69))
    assert indices["primate"] == list(range(365, 385))
    assert indices["bird"] == [*range(7, 25), *range(80, 101), *range(127, 147)]


def test_group_probability_is_the_sum_over_its_classes():
    probabilities = np.zeros(1000, dtype=np.float32)
    probabilities[[55, 60, 62]] = [0.5, 0.3, 0.12]  # green snake, night snake, rock python
    probabilities[281] = 0.05  # tabby
    probabilities[500] = 0.03  # not an animal class
    totals = group_probabilities(probabilities)
    assert totals["snake"] == pytest.approx(0.92)
    assert totals["cat"] == pytest.approx(0.05)
    assert totals[NOT_AN_ANIMAL] == pytest.approx(0.03, abs=1e-6)
    assert sum(totals.values()) == pytest.approx(1.0)


def test_cli_groups_needs_imagenet(chelsea, capsys):
    assert main(["predict", "--groups", "some-model", str(chelsea)]) == 2
    assert "--groups: only with --imagenet" in capsys.readouterr().err
