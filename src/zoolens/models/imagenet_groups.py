"""Animal groups of the ImageNet classes, for answers with no training: "snake (92 %)".

A group's probability is the sum of the ImageNet class probabilities inside its index ranges. Every
range records the category names at both of its ends, so a test checks the table against
`imagenet_categories()` instead of trusting hand-typed numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOT_AN_ANIMAL = "not an animal"


@dataclass(frozen=True)
class IndexRange:
    first: int  # inclusive
    last: int  # inclusive
    first_name: str
    last_name: str

    @property
    def indices(self) -> range:
        return range(self.first, self.last + 1)


# name -> ImageNet index ranges (inclusive), each with the category names at its two ends.
ANIMAL_GROUPS: dict[str, tuple[IndexRange, ...]] = {
    "fish": (IndexRange(0, 6, "tench", "stingray"), IndexRange(389, 397, "barracouta", "puffer")),
    "bird": (
        IndexRange(7, 24, "cock", "great grey owl"),
        IndexRange(80, 100, "black grouse", "black swan"),
        IndexRange(127, 146, "white stork", "albatross"),
    ),
    "amphibian": (IndexRange(25, 32, "European fire salamander", "tailed frog"),),
    "turtle": (IndexRange(33, 37, "loggerhead", "box turtle"),),
    "lizard": (IndexRange(38, 48, "banded gecko", "Komodo dragon"),),
    "crocodile": (IndexRange(49, 50, "African crocodile", "American alligator"),),
    "snake": (IndexRange(52, 68, "thunder snake", "sidewinder"),),
    "spider or scorpion": (IndexRange(70, 78, "harvestman", "tick"),),
    "crab or lobster": (IndexRange(118, 126, "Dungeness crab", "isopod"),),
    "mollusc": (IndexRange(112, 117, "conch", "chambered nautilus"),),
    "marsupial": (IndexRange(104, 106, "wallaby", "wombat"),),
    "whale or sea mammal": (IndexRange(147, 150, "grey whale", "sea lion"),),
    "dog": (IndexRange(151, 268, "Chihuahua", "Mexican hairless"),),
    "wolf or wild dog": (IndexRange(269, 275, "timber wolf", "African hunting dog"),),
    "fox": (IndexRange(277, 280, "red fox", "grey fox"),),
    "cat": (IndexRange(281, 285, "tabby", "Egyptian cat"),),
    "big cat": (IndexRange(286, 293, "cougar", "cheetah"),),
    "bear": (IndexRange(294, 297, "brown bear", "sloth bear"),),
    "panda": (IndexRange(387, 388, "lesser panda", "giant panda"),),
    "insect": (IndexRange(300, 326, "tiger beetle", "lycaenid"),),
    "rabbit": (IndexRange(330, 332, "wood rabbit", "Angora"),),
    "rodent": (IndexRange(333, 338, "hamster", "guinea pig"),),
    "horse or zebra": (IndexRange(339, 340, "sorrel", "zebra"),),
    "pig": (IndexRange(341, 343, "hog", "warthog"),),
    "cattle, sheep or goat": (IndexRange(345, 350, "ox", "ibex"),),
    "antelope": (IndexRange(351, 353, "hartebeest", "gazelle"),),
    "camel or llama": (IndexRange(354, 355, "Arabian camel", "llama"),),
    "weasel family": (IndexRange(356, 362, "weasel", "badger"),),
    "primate": (IndexRange(365, 384, "orangutan", "indri"),),
    "elephant": (IndexRange(385, 386, "Indian elephant", "African elephant"),),
}


def group_indices(groups: dict[str, tuple[IndexRange, ...]] = ANIMAL_GROUPS) -> dict[str, list[int]]:
    return {name: [i for r in ranges for i in r.indices] for name, ranges in groups.items()}


def group_probabilities(probabilities: np.ndarray) -> dict[str, float]:
    """(1000,) ImageNet probabilities -> probability of each group, plus what no group covers."""
    totals = {name: float(probabilities[indices].sum()) for name, indices in group_indices().items()}
    totals[NOT_AN_ANIMAL] = max(0.0, 1.0 - sum(totals.values()))
    return totals


def rank_groups(probabilities: np.ndarray, top_k: int = 3) -> list[tuple[str, float]]:
    totals = group_probabilities(probabilities)
    return sorted(totals.items(), key=lambda item: -item[1])[:top_k]


def group_of_category(index: int) -> str | None:
    for name, ranges in ANIMAL_GROUPS.items():
        if any(index in r.indices for r in ranges):
            return name
    return None
