"""`Model`: a trained classifier you can load, save and ask about photos."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from zoolens import __version__
from zoolens.data.images import open_image
from zoolens.data.transforms import preprocess_array
from zoolens.errors import ImageError, ZoolensError
from zoolens.inference import bundle
from zoolens.models.backbones import BackboneInfo, Preprocessing, build_backbone
from zoolens.models.classifier import Classifier
from zoolens.training.features import backbone_key, extract_features, make_engine

NOT_SURE = "not sure"


@dataclass
class Prediction:
    source: str
    label: str | None  # None: below the confidence threshold ("not sure"), or the photo was unusable
    confidence: float
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def answer(self) -> str:
        if self.error:
            return f"error: {self.error}"
        return self.label if self.label is not None else NOT_SURE


class Model:
    def __init__(self, network: Classifier, classes: list[str], preprocessing: Preprocessing, meta: dict | None = None):
        self.network = network.eval()
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.meta = meta or {}
        self.temperature = float(self.meta.get("calibration", {}).get("temperature", 1.0))
        self.path: Path | None = None

    # ---- persistence -------------------------------------------------------------------------
    def describe(self) -> dict:
        """The bundle's JSON: what was recorded about training, then the facts of this network now."""
        backbone = self.network.backbone
        return {
            **self.meta,
            "format": bundle.FORMAT,
            "format_version": bundle.FORMAT_VERSION,
            "zoolens_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "classes": self.classes,
            "backbone": {
                "name": backbone.info.name,
                "source": backbone.info.source,
                "weights_tag": backbone.info.weights_tag,
                "feature_dim": backbone.feature_dim,
            },
            "preprocessing": self.preprocessing.to_dict(),
            "head": {"dropout": float(self.network.head[0].p)},
            "parameters": sum(p.numel() for p in self.network.parameters()),
            "calibration": {**self.meta.get("calibration", {}), "temperature": self.temperature},
        }

    def save(self, path: str | Path, extra_files: dict[str, Path] | None = None) -> Path:
        path = Path(path)
        self.meta = self.describe()
        bundle.write_bundle(path, self.network.state_dict(), self.meta, extra_files)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Rebuild the architecture from the JSON description and load the safetensors weights."""
        path = Path(path)
        meta = bundle.read_meta(path)
        described = meta["backbone"]
        try:
            backbone = build_backbone(described["name"], pretrained=False)
        except ZoolensError as error:
            raise ZoolensError(f"{path}: {error}") from None
        # A frozen backbone still holds the pretrained weights, so it shares their feature cache.
        backbone.info = BackboneInfo(
            backbone.info.name, backbone.info.source, backbone.info.preprocessing, described.get("weights_tag", "none")
        )
        classes = meta["classes"]
        network = Classifier(backbone, len(classes), dropout=float(meta.get("head", {}).get("dropout", 0.2)))
        state = bundle.read_weights(path)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first = str(error).splitlines()[0]
            raise ZoolensError(
                f"{path / bundle.WEIGHTS_FILE}: weights do not match the described model ({len(classes)} classes, "
                f"{described['name']}): {first}"
            ) from None
        model = cls(network, classes, Preprocessing.from_dict(meta["preprocessing"]), meta)
        model.path = path
        return model

    # ---- prediction --------------------------------------------------------------------------
    def _head_probabilities(self, features: np.ndarray) -> np.ndarray:
        # NumPy rather than torch for this one small matrix product: torch's per-call overhead
        # is several milliseconds on a busy 2-core CPU, a large share of a single prediction.
        dense = self.network.head[-1]
        weight, bias = dense.weight.detach().numpy(), dense.bias.detach().numpy()
        logits = (features @ weight.T + bias) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict_proba_paths(self, paths: list[Path], progress: bool = False):
        """Class probabilities for photo files: (probabilities, usable mask, problems)."""
        found = extract_features(
            [Path(p) for p in paths], self.network.backbone, self.preprocessing, progress=progress
        )
        return self._head_probabilities(found.features), found.usable, found.problems

    def predict_proba_images(self, images: list[Image.Image]) -> np.ndarray:
        batch = np.stack([preprocess_array(open_image(image), self.preprocessing) for image in images])
        return self.predict_proba_arrays(batch)

    def predict_proba_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for already preprocessed network inputs (N, 3, S, S)."""
        backbone = self.network.backbone
        engine = make_engine(backbone, backbone_key(backbone, self.preprocessing), self.preprocessing.input_size)
        return self._head_probabilities(engine(batch))

    def _to_prediction(self, source: str, probabilities: np.ndarray, top_k: int, min_confidence: float) -> Prediction:
        order = np.argsort(-probabilities)[: max(1, top_k)]
        top = [(self.classes[i], float(probabilities[i])) for i in order]
        label, confidence = top[0]
        return Prediction(source, label if confidence >= min_confidence else None, confidence, top)

    def predict(self, inputs, top_k: int = 3, min_confidence: float = 0.0, progress: bool = False) -> list[Prediction]:
        """Predict for photo paths, PIL images or raw bytes (one or a list). Unusable photos come back
        as predictions with `error` set, never as exceptions."""
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        results: list[Prediction | None] = [None] * len(inputs)
        path_positions = [i for i, item in enumerate(inputs) if isinstance(item, (str, Path))]
        if path_positions:
            paths = [Path(inputs[i]) for i in path_positions]
            probabilities, usable, problems = self.predict_proba_paths(paths, progress)
            reasons = dict(problems)
            for n, i in enumerate(path_positions):
                if usable[n]:
                    results[i] = self._to_prediction(str(paths[n]), probabilities[n], top_k, min_confidence)
                else:
                    results[i] = Prediction(str(paths[n]), None, 0.0, error=reasons.get(str(paths[n]), "unusable"))
        for i, item in enumerate(inputs):
            if results[i] is None:
                source = getattr(item, "filename", None) or f"<image {i + 1}>"
                try:
                    image = open_image(bytes(item) if isinstance(item, (bytes, bytearray)) else item)
                    probabilities = self.predict_proba_images([image])[0]
                    results[i] = self._to_prediction(str(source), probabilities, top_k, min_confidence)
                except ImageError as error:
                    results[i] = Prediction(str(source), None, 0.0, error=error.reason)
        return results  # type: ignore[return-value]
