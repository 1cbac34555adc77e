"""What the apps share: one `Predictor` for a trained zoolens model or the ImageNet classes, and model discovery."""

from __future__ import annotations

from pathlib import Path

from zoolens.errors import ZoolensError
from zoolens.inference.bundle import META_FILE
from zoolens.inference.model import Prediction

DEFAULT_MIN_CONFIDENCE = 0.6
IMAGENET_NAME = "ImageNet (1000 classes, no training)"

# Imagewoof's class folders are ImageNet WordNet ids.
BREED_NAMES = {
    "n02086240": "Shih-Tzu",
    "n02087394": "Rhodesian ridgeback",
    "n02088364": "beagle",
    "n02089973": "English foxhound",
    "n02093754": "Border terrier",
    "n02096294": "Australian terrier",
    "n02099601": "golden retriever",
    "n02105641": "Old English sheepdog",
    "n02111889": "Samoyed",
    "n02115641": "dingo",
}


def display_label(label: str) -> str:
    """A class name for people: Imagewoof's WordNet ids become breed names; anything else stays."""
    return BREED_NAMES.get(label, label)


def with_display_labels(prediction: Prediction) -> Prediction:
    if prediction.label is not None:
        prediction.label = display_label(prediction.label)
    prediction.top = [(display_label(label), probability) for label, probability in prediction.top]
    return prediction


class Predictor:
    """A trained model (`model_path`) or, with none, the pretrained network's 1000 ImageNet classes."""

    def __init__(self, model_path: str | Path | None = None, backbone: str = "mobilenet_v2"):
        self.model_path = Path(model_path) if model_path else None
        if self.model_path is None:
            from zoolens.inference.imagenet import ImageNetClassifier

            self.imagenet = ImageNetClassifier(backbone)
            self.model = None
            self.name = IMAGENET_NAME
            self.classes = self.imagenet.categories
        else:
            from zoolens.inference.model import Model

            self.model = Model.load(self.model_path)
            self.imagenet = None
            self.name = self.model_path.name
            self.classes = self.model.classes

    @property
    def is_imagenet(self) -> bool:
        return self.model is None

    def predict(self, inputs, top_k: int = 3, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[Prediction]:
        if self.model is not None:
            predictions = self.model.predict(inputs, top_k=top_k, min_confidence=min_confidence)
            return [with_display_labels(p) for p in predictions]
        predictions = self.imagenet.predict(inputs, top_k=top_k)
        for p in predictions:
            if p.label is not None and p.confidence < min_confidence:
                p.label = None  # the same honest "not sure" a trained model gives
        return predictions


def describe_answer(prediction: Prediction) -> str:
    """One line a person reads: 'cats (97.2 %)', 'not sure (best guess: cats, 41.0 %)' or the error."""
    if prediction.error:
        return f"cannot read this photo: {prediction.error}"
    if prediction.label is None:
        best, probability = prediction.top[0]
        return f"not sure (best guess: {best}, {probability:.1%})"
    return f"{prediction.label} ({prediction.confidence:.1%})"


def find_models(folder: str | Path) -> list[Path]:
    """Model folders (holding zoolens.json) in `folder` or one level below it, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = {p.parent for p in folder.glob(f"*/{META_FILE}")} | {p.parent for p in folder.glob(META_FILE)}
    return sorted(found, key=lambda p: str(p))


def require_model_folder(path: str | Path) -> Path:
    path = Path(path)
    if not (path / META_FILE).is_file():
        raise ZoolensError(f"{path}: not a zoolens model folder (no {META_FILE})")
    return path
