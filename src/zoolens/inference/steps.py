"""The fitted steps a `Model` is a pipeline of, each a small immutable object holding what it learned:

    features (`FeatureStep`) -> dense head (`DenseLayer`) -> temperature (`TemperatureScaling`) -> open-set check
    (`models.open_set.OpenSetCheck`)

as scikit-learn's `Pipeline` chains its fitted estimators (and `CalibratedClassifierCV` its calibration). They run
with NumPy and ONNX Runtime alone; `inference.record.ModelRecord` describes them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoolens.models.member_scaling import normalised_members
from zoolens.models.probabilities import softmax
from zoolens.runtime.extractor import Extractor, combined


@dataclass(frozen=True)
class FeatureStep:
    """Where a model's features come from: the extractor its head reads (`classes_from`), and the one its open-set
    check reads (`check_from`): the same, or, beside a fine-tuned or scratch backbone, a pretrained one whose
    features still feed its ImageNet classifier. `extractor` gives both side by side: the one array of features
    every caller passes on to `Model.predict_features`."""

    classes_from: Extractor
    check_from: Extractor

    @property
    def separate(self) -> bool:
        return self.check_from != self.classes_from

    @property
    def extractor(self) -> Extractor:
        return combined(self.classes_from, self.check_from) if self.separate else self.classes_from

    def split(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the head's features, the open-set check's) of the features `extractor` made."""
        if not self.separate:
            return features, features
        width = self.classes_from.feature_dim
        return features[:, :width], features[:, width:]


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """The head: one dense layer over the pooled features (dropout only while it trained). Over an ensemble's
    features (`member_widths`: each member's width, in order) it reads each member's features scaled to one length
    (`models.member_scaling`)."""

    weight: np.ndarray  # (classes, features) float32
    bias: np.ndarray  # (classes,) float32
    dropout: float
    member_widths: tuple[int, ...] = ()

    def __repr__(self) -> str:
        classes, features = self.weight.shape
        members = f", {len(self.member_widths)} members scaled alike" if len(self.member_widths) > 1 else ""
        return f"DenseLayer({features} features -> {classes} classes, dropout {self.dropout}{members})"

    def inputs(self, features: np.ndarray) -> np.ndarray:
        """The features as the layer reads them."""
        return normalised_members(np.asarray(features, np.float32), self.member_widths)

    def logits(self, features: np.ndarray) -> np.ndarray:
        # NumPy rather than torch for this one small matrix product: torch's per-call overhead is several
        # milliseconds on a busy 2-core CPU, a large share of a single prediction.
        return self.inputs(features) @ self.weight.T + self.bias


@dataclass(frozen=True)
class TemperatureScaling:
    """Confidences that mean what they say: the logits divided by one temperature fitted on validation photos
    (Guo et al., 2017; `models.dense_head.fit_temperature`), 1 when not fitted."""

    temperature: float = 1.0
    fitted_on: str | None = None  # which photos, in words

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits / self.temperature)

    def to_json(self) -> dict:
        return {"temperature": self.temperature, **({"fitted_on": self.fitted_on} if self.fitted_on else {})}
