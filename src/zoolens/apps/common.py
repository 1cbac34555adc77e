"""What the apps share: one `Predictor` for a trained zoolens model or the ImageNet classes, the line each app shows
for its answer, and model discovery."""

from __future__ import annotations

from pathlib import Path

from zoolens.choices import DEFAULT_BACKBONE, DEFAULT_MIN_CONFIDENCE, DEFAULT_OPEN_SET
from zoolens.errors import ZoolensError
from zoolens.inference.bundle import META_FILE
from zoolens.inference.prediction import CLASS, NONE_OF_THESE, Prediction
from zoolens.models.open_set import PERSON

IMAGENET_NAME = "ImageNet (1000 classes, no training)"

class Predictor:
    """A trained model (`model_path`) or, with none, the pretrained network's 1000 ImageNet classes."""

    def __init__(self, model_path: str | Path | None = None, backbone: str = DEFAULT_BACKBONE):
        self.model_path = Path(model_path) if model_path else None
        self.backbone = backbone
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

    def predict(self, inputs, top_k: int = 3, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                open_set: str = DEFAULT_OPEN_SET) -> list[Prediction]:
        """`open_set` ("on", "strict", "off") applies to a trained model; ImageNet mode always says when a
        photo holds no animal, as its 1000 classes are all there is to be."""
        if self.model is not None:
            return self.model.predict(inputs, top_k=top_k, min_confidence=min_confidence, open_set=open_set)
        return self.imagenet.predict(inputs, top_k=top_k, min_confidence=min_confidence)


def answer_line(prediction: Prediction, imagenet: bool = False) -> str:
    """The line an app shows: `Prediction.describe()` as a sentence. With the ImageNet classes there is no
    "these" to be none of, so a photo without an animal reads "No animal found (it looks like an espresso)"."""
    if imagenet and prediction.verdict == NONE_OF_THESE:
        found = "No animal found" + (": a person" if prediction.reason == PERSON else "")
        return found + (f" ({prediction.detail})" if prediction.detail else "")
    line = prediction.describe()
    return line if prediction.verdict == CLASS else line[:1].upper() + line[1:]


def scores_note(prediction: Prediction, imagenet: bool = False) -> str | None:
    """What the top-k bars are when they are not the answer: a rocket's "dogs 97 %" is only the nearest class."""
    if prediction.verdict == CLASS or not prediction.top:
        return None
    return "ImageNet's closest classes" if imagenet else "Scores among the classes this model knows — not an answer"


def side_by_side(image, overlay):
    """The photo (as the network saw it) and its Grad-CAM overlay in one picture, the photo first."""
    from PIL import Image

    image = image.convert("RGB").resize(overlay.size)
    pair = Image.new("RGB", (overlay.width * 2 + 8, overlay.height), "white")
    pair.paste(image, (0, 0))
    pair.paste(overlay.convert("RGB"), (overlay.width + 8, 0))
    return pair


def explain_target(predictor: Predictor):
    """What Grad-CAM explains for a predictor: its trained model, or the ImageNet network it answers with."""
    from zoolens.evaluation.explain import Explainable

    return predictor.model if predictor.model is not None else Explainable.imagenet(predictor.backbone)


def gradcam_pair(predictor: Predictor, photo):
    """`side_by_side` for one photo (a path, an image or bytes) and the predictor's network; raises what the
    explainer raises."""
    from zoolens.evaluation.explain import explain

    explanation = explain(explain_target(predictor), [photo], method="gradcam", progress=False)[0]
    if explanation.error:
        raise ZoolensError(explanation.error)
    return side_by_side(explanation.image, explanation.overlay("gradcam"))


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
