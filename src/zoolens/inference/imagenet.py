"""ImageNet out of the box: the pretrained network's own 1000 classes, no training, answered at the animal-group
level first ("cat, 97 % — most likely Persian cat"; "none of these: no animal in the photo (it looks like an
espresso)"), with the same `Prediction` a trained model gives."""

from __future__ import annotations

import numpy as np

from zoolens.choices import DEFAULT_BACKBONE
from zoolens.data.transforms import network_pixels
from zoolens.errors import ImageError
from zoolens.inference.prediction import (
    NONE_OF_THESE,
    NOT_SURE,
    Prediction,
    as_photo,
    failed,
    input_list,
    open_input,
    ranked,
    source_name,
    with_article,
)
from zoolens.inference.predictor import TOP_K
from zoolens.models.available import describe_backbone, imagenet_categories
from zoolens.models.faces import PERSON_MIN_SIDE, has_person
from zoolens.models.imagenet_groups import NOT_AN_ANIMAL, group_indices, rank_groups
from zoolens.models.open_set import NO_ANIMAL, PERSON
from zoolens.models.probabilities import softmax
from zoolens.runtime.features import FeatureExtractor, make_engine

__all__ = ["DOG_CLASSES", "ImageNetClassifier", "imagenet_categories"]

# ImageNet class indices of dog breeds (the seeds' dog detector: 151-268 inclusive).
DOG_CLASSES = range(151, 269)
BATCH = 32


def _imagenet_network(backbone: str):
    from zoolens.models.backbones import build_imagenet_classifier

    return build_imagenet_classifier(backbone)[0]


class ImageNetClassifier:
    """The pretrained network's 1000 ImageNet classes as a `Predictor`: an animal group with the likeliest ImageNet
    class inside it, or "none of these" for a photo without an animal."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE):
        info = describe_backbone(backbone)
        self.backbone = info.name
        self.preprocessing = info.preprocessing
        key = "imagenet-" + info.weights_id.replace(":", "-")
        self.engine = make_engine(FeatureExtractor(key, 1000, self.preprocessing,
                                                 lambda: _imagenet_network(backbone)))
        self.categories = imagenet_categories(backbone)
        self.classes = self.categories
        self._groups = group_indices()

    def __repr__(self) -> str:
        return (f"ImageNetClassifier(backbone={self.backbone!r}: {len(self.classes)} ImageNet classes in "
                f"{len(self._groups)} animal groups, {self.preprocessing.input_size} px)")

    def probabilities(self, photos) -> np.ndarray:
        """ImageNet's 1000 probabilities for each photo (a path, bytes, an open file or a PIL image), decoded and
        preprocessed at this backbone's size as every surface does (`transforms.network_pixels`). Raises ImageError."""
        return self.probabilities_of_pixels(np.stack([network_pixels(photo, self.preprocessing) for photo in photos]))

    def probabilities_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """ImageNet's probabilities for photos already resized and cropped, 8-bit (N, S, S, 3)."""
        return softmax(self.engine(pixels))

    def answer(self, source: str, probabilities: np.ndarray, photo=None, top_k: int = TOP_K,
               min_confidence: float = 0.0, by_group: bool = False) -> Prediction:
        """The animal group first, then the most likely ImageNet class inside it; no group: none of these, "a person"
        when `photo` (as `predict` takes it) is opened and a face is found, as `Model.predict` checks."""
        groups = rank_groups(probabilities, top_k=len(self._groups) + 1)
        group, confidence = groups[0]
        top = groups[: max(1, top_k)] if by_group else ranked(probabilities, self.categories, top_k)
        if group == NOT_AN_ANIMAL:
            looks_like = self.categories[int(np.argmax(probabilities))]
            reason = PERSON if photo is not None and shows_a_person(photo) else NO_ANIMAL
            return Prediction(source, None, confidence, top, verdict=NONE_OF_THESE, reason=reason,
                              nearest=looks_like, detail=f"it looks like {with_article(looks_like)}")
        inside = self._groups[group]
        species = self.categories[inside[int(np.argmax(probabilities[inside]))]]
        if confidence < min_confidence:
            return Prediction(source, None, confidence, top, verdict=NOT_SURE, nearest=group,
                              detail=f"most likely {species}")
        return Prediction(source, group, confidence, top, detail=f"most likely {species}")

    def predict(self, inputs, top_k: int = TOP_K, min_confidence: float = 0.0,
                by_group: bool = False) -> list[Prediction]:
        """Photos (paths, PIL images, bytes or open files; one or a list; a folder walked as `zoolens predict`
        walks it): each an animal group with its probability and the ImageNet classes (or, `by_group`, the groups)
        as top-k; a photo without an animal is none of these."""
        items = input_list(inputs)
        photos = [(source_name(item, position), as_photo(item)) for position, item in enumerate(items)]
        results: list[Prediction] = []
        for start in range(0, len(photos), BATCH):
            chunk = photos[start : start + BATCH]
            pixels, problems = {}, {}
            for n, (_, photo) in enumerate(chunk):
                try:
                    pixels[n] = network_pixels(photo, self.preprocessing)
                except ImageError as error:
                    problems[n] = error.reason
            rows = dict(zip(pixels, self.probabilities_of_pixels(np.stack(list(pixels.values()))))) if pixels else {}
            for n, (source, photo) in enumerate(chunk):
                if n in problems:
                    results.append(failed(source, problems[n]))
                else:
                    results.append(self.answer(source, rows[n], photo, top_k, min_confidence, by_group))
        return results


def shows_a_person(photo) -> bool:
    """The person check of a photo turned away, on the photo opened as `Model.predict` opens it for that check
    (PERSON_MIN_SIDE), so that one photo gets one answer; False when it cannot be opened."""
    try:
        return has_person(open_input(photo, PERSON_MIN_SIDE))
    except ImageError:
        return False
