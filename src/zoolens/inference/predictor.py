"""What every zoolens predictor is: its `classes`, and `predict` taking photos (a path, a PIL image or bytes; one or a
list) to one `Prediction` each, in order, never an exception for a bad photo. A trained `Model`, the
`ImageNetClassifier` and the dog-breed app (`DogBreedApp`) all are one, so code written for one takes any:

    def show(predictor: Predictor, photos):
        for p in predictor.predict(photos):
            print(p.source, p.describe())

Structural (`typing.Protocol`), as scikit-learn's estimators are: nothing inherits from it, and
`isinstance(x, Predictor)` checks that `x` has both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from zoolens.choices import TOP_K  # noqa: F401  (re-exported: the protocol's default)

if TYPE_CHECKING:
    from zoolens.inference.prediction import Prediction


@runtime_checkable
class Predictor(Protocol):
    classes: list[str]

    def predict(self, inputs, top_k: int = TOP_K, min_confidence: float = 0.0) -> list[Prediction]:
        """One `Prediction` per photo: a class, "not sure" below `min_confidence`, "none of these" (with its
        reason) or an error; `top_k` of its likeliest classes with their probabilities in `Prediction.top`."""
        ...
