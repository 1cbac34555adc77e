"""`Model`: a trained classifier you can load, save and ask about photos."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from safetensors import SafetensorError

from zoolens import __version__, files
from zoolens.choices import OPEN_SET_MODES
from zoolens.data.class_names import distinct_names, wordnet_name
from zoolens.data.images import open_image
from zoolens.data.transforms import Preprocessing, cropped_pixels
from zoolens.errors import ImageError, ZoolensError
from zoolens.inference import bundle
from zoolens.inference.record import EvaluationRecord, read_evaluation, read_history
from zoolens.inference.prediction import (
    NONE_OF_THESE,
    NOT_SURE,
    Prediction,
    decide,
    failed,
    input_list,
    is_path,
    open_input,
    source_name,
)
from zoolens.models.available import BackboneInfo, describe_backbone, offline_weights_available
from zoolens.models.faces import PERSON_MIN_SIDE
from zoolens.models.open_set import NO_ANIMAL, OPEN_SET_FILE, PERSON, UNLIKE_TRAINING_ANY, OpenSetCheck
from zoolens.models.probabilities import softmax
from zoolens.runtime.features import (
    FeatureNetwork,
    extract_features,
    feature_key,
    feature_network,
    make_engine,
    onnx_path,
    weights_fingerprint,
)

if TYPE_CHECKING:
    from zoolens.models.classifier import Classifier
    from zoolens.runtime.pretrained_kit import PretrainedKit

__all__ = ["NONE_OF_THESE", "NOT_SURE", "Model", "Prediction"]
log = logging.getLogger(__name__)
HEAD_WEIGHT, HEAD_BIAS = "head.1.weight", "head.1.bias"  # the dense layer's tensors in model.safetensors
BACKBONE_PREFIX = "backbone."


def reference_name(path: Path, recorded: dict) -> str | None:
    """The pretrained backbone a model's open-set check runs on, when it is not the model's own (fine-tuned and
    scratch models); None for the model's own."""
    features = recorded.get("features", "own")
    if not isinstance(features, dict):
        return None
    name = features.get("backbone")
    if not isinstance(name, str):
        raise ZoolensError(f"{path / bundle.META_FILE}: open_set.features names no backbone")
    return name


def pretrained_network(name: str, prep: Preprocessing, feature_dim: int) -> FeatureNetwork:
    """A pretrained backbone's features, without building it: from its ONNX file once exported, with its weights
    from the same place as for training the one time it is not (ZoolensError when they are neither installed nor
    downloadable)."""
    info = describe_backbone(name)
    network = FeatureNetwork(feature_key(info.weights_id, prep), feature_dim, prep,
                             lambda: _pretrained_backbone(name))
    if not onnx_path(network.key).exists() and not offline_weights_available(name):
        _pretrained_backbone(name)  # downloads them, or says why it cannot
    return network


def _pretrained_backbone(name: str):
    from zoolens.models.backbones import build_backbone

    return build_backbone(name, pretrained=True)


def _head_and_backbone_key(path: Path, meta: dict, prep: Preprocessing) -> tuple[np.ndarray, np.ndarray, str]:
    """The dense layer's weights and the key of the model's own features, read from model.safetensors with NumPy:
    the backbone's tensors are only hashed, and only when they are its own (fine-tuned, scratch); a frozen one's
    features are the pretrained backbone's."""
    described, classes = meta["backbone"], meta["classes"]
    tensors = bundle.read_weights_numpy(path)
    weight, bias = tensors.get(HEAD_WEIGHT), tensors.get(HEAD_BIAS)
    dim = described.get("feature_dim")
    if (weight is None or bias is None or weight.ndim != 2 or weight.shape != (len(classes), dim)
            or bias.shape != (len(classes),)):
        found = "no dense layer" if weight is None or bias is None else f"a dense layer of shape {list(weight.shape)}"
        raise ZoolensError(f"{path / bundle.WEIGHTS_FILE}: weights do not match the described model ({len(classes)} "
                           f"classes, {described['name']} with {dim} features): {found}")
    tag = described.get("weights_tag", "none")
    if tag != "none":
        weights = dataclasses.replace(describe_backbone(described["name"]), weights_tag=tag).weights_id
    else:
        weights = weights_fingerprint({name[len(BACKBONE_PREFIX):]: array for name, array in tensors.items()
                                       if name.startswith(BACKBONE_PREFIX)})
    return weight.astype(np.float32), bias.astype(np.float32), feature_key(weights, prep)


def load_network(path: Path, meta: dict) -> Classifier:
    """The PyTorch network of a saved model (Grad-CAM, export, saving again, training further need it)."""
    from zoolens.models.backbones import build_backbone
    from zoolens.models.classifier import Classifier

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
    return network.eval()


def _open_set_file(path: Path) -> Path | None:
    """The model's open-set data file, None when it has none; refused unopened when it is not a regular file
    (a FIFO there would block the load forever)."""
    file = path / OPEN_SET_FILE
    if not file.exists():
        return None
    files.regular_file(file)
    return file


def _io_reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).rpartition("I/O error: ")[2] or type(error).__name__


def recorded_names(classes: list[str], meta: dict) -> dict[str, str]:
    """{class: name people read}, where they differ: as recorded at training (`class_names`), else, for a model made
    before zoolens recorded them, the WordNet names of ImageNet ids."""
    recorded = meta.get("class_names")
    names = dict(zip(classes, map(str, recorded))) if isinstance(recorded, list) and len(recorded) == len(classes) \
        else {c: wordnet_name(c) or c for c in classes}
    return {c: name for c, name in distinct_names(names).items() if name != c}  # a model folder from elsewhere too


@dataclasses.dataclass(frozen=True)
class FrozenBackbone:
    """A new model's pretrained backbone, which training left as it was: its cached kit (weights and facts) stands in
    for its PyTorch network until something needs that (Grad-CAM, export, training further)."""

    kit: PretrainedKit
    dropout: float


class Model:
    """A trained classifier. Loaded from a folder, it answers with ONNX Runtime and NumPy alone: its PyTorch network
    (`.network`) is built only when something asks for it (Grad-CAM, export, saving, training). So is a new model
    trained on frozen features (`head_on_frozen_backbone`), which is saved from its kit."""

    def __init__(self, network: Classifier | None, classes: list[str], preprocessing: Preprocessing,
                 meta: dict | None = None):
        self._network = network.eval() if network is not None else None
        self._head: tuple[np.ndarray, np.ndarray] | None = None  # a loaded model's dense layer, (weight, bias)
        self._feature_networks: list[FeatureNetwork] | None = None  # a loaded model's, own first
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.meta = meta or {}
        self.names = recorded_names(self.classes, self.meta)
        self.temperature = float(self.meta.get("calibration", {}).get("temperature", 1.0))
        self.path: Path | None = None
        self.open_set: OpenSetCheck | None = None  # "none of these"; fitted by train(), saved in the bundle
        self.reference = None  # the pretrained backbone the open-set check runs on, beside a fine-tuned one
        self._frozen: FrozenBackbone | None = None

    @classmethod
    def head_on_frozen_backbone(cls, weight: np.ndarray, bias: np.ndarray, classes: list[str], kit: PretrainedKit,
                                dropout: float, network) -> Model:
        """A model of a dense layer (NumPy) on a pretrained backbone's frozen features, `network` their
        FeatureNetwork: it answers, and is saved, without PyTorch."""
        model = cls(None, classes, network.preprocessing)
        model._head = np.asarray(weight, np.float32), np.asarray(bias, np.float32)
        model._frozen = FrozenBackbone(kit, dropout)
        model._feature_networks = [dataclasses.replace(network, build=lambda: model.network.backbone)]
        return model

    # Its results on the test part it held out, and its training history (one row per epoch): set by train() for a
    # new model, read from its folder (evaluation/metrics.json, history.csv) the first time a loaded one is asked.
    @functools.cached_property
    def evaluation(self) -> EvaluationRecord | None:
        return read_evaluation(self.path) if self.path is not None else None

    @functools.cached_property
    def history(self) -> list[dict] | None:
        return read_history(self.path) if self.path is not None else None

    def __repr__(self) -> str:
        training = self.meta.get("training", {})
        made = " ".join(str(part) for part in (self.meta.get("backbone", {}).get("name") or training.get("backbone"),
                                               training.get("strategy")) if part)
        shown = [self.name(c) for c in self.classes]
        classes = ", ".join(shown[:6]) + (f", ... ({len(shown) - 6} more)" if len(shown) > 6 else "")
        facts = [f"{len(self.classes)} classes: {classes}"]
        if self.evaluation is not None:
            facts.append(f"test accuracy {100 * self.evaluation.accuracy:.1f} %")
        where = [repr(str(self.path))] if self.path is not None else []
        return f"Model({', '.join(where + ([made] if made else []) + ['; '.join(facts)])})"

    @property
    def network(self) -> Classifier:
        if self._network is None:
            self._network = self._built_frozen() if self._frozen is not None else load_network(self.path, self.meta)
        return self._network

    def _built_frozen(self) -> Classifier:
        from zoolens.models.backbones import build_backbone
        from zoolens.models.classifier import Classifier, set_head

        network = Classifier(build_backbone(self._frozen.kit.info.name, pretrained=True), len(self.classes),
                             dropout=self._frozen.dropout)
        set_head(network, *self._head)
        return network.eval()

    def _network_facts(self) -> dict:
        """What zoolens.json says about the network: from the kit while the network is not built, else from it."""
        if self._network is None and self._frozen is not None:
            kit, (weight, bias) = self._frozen.kit, self._head
            return {"backbone": {"name": kit.info.name, "source": kit.info.source, "weights_tag": kit.info.weights_tag,
                                 "feature_dim": kit.feature_dim},
                    "head": {"dropout": float(self._frozen.dropout)},
                    "parameters": kit.parameters + weight.size + bias.size}
        backbone = self.network.backbone
        return {"backbone": {"name": backbone.info.name, "source": backbone.info.source,
                             "weights_tag": backbone.info.weights_tag, "feature_dim": backbone.feature_dim},
                "head": {"dropout": float(self.network.head[0].p)},
                "parameters": sum(p.numel() for p in self.network.parameters())}

    def _weights(self) -> dict:
        """The network's tensors by name: PyTorch's, or, while it is not built, the kit's arrays and the head's."""
        if self._network is None and self._frozen is not None:
            weight, bias = self._head
            return {**self._frozen.kit.tensors(), HEAD_WEIGHT: weight, HEAD_BIAS: bias}
        return self.network.state_dict()

    # ---- persistence -------------------------------------------------------------------------
    def describe(self) -> dict:
        """The bundle's JSON: what was recorded about training, then the facts of this network now."""
        facts = self._network_facts()
        return {
            **self.meta,
            "format": bundle.FORMAT,
            "format_version": bundle.FORMAT_VERSION,
            "zoolens_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "classes": self.classes,
            "class_names": [self.names.get(c, c) for c in self.classes],
            "backbone": facts["backbone"],
            "preprocessing": self.preprocessing.to_dict(),
            "head": facts["head"],
            "parameters": facts["parameters"],
            "calibration": {**self.meta.get("calibration", {}), "temperature": self.temperature},
            "open_set": self.open_set.summary if self.open_set is not None else {"animal_check": "off",
                                                                                  "method": "none (not fitted)"},
        }

    def save(self, path: str | Path, extra_files: dict[str, Path] | None = None, check=None) -> Path:
        """The model's folder written (`bundle.write_bundle`); `check(folder)` may refuse it before it is published."""
        path = Path(path)
        self.meta = self.describe()
        with tempfile.TemporaryDirectory(prefix="zoolens-save-") as scratch:
            extra = dict(extra_files or {})
            if self.open_set is not None:
                try:
                    extra[OPEN_SET_FILE] = self.open_set.save(Path(scratch) / OPEN_SET_FILE)
                except (OSError, SafetensorError) as error:
                    raise ZoolensError(f"{path}: the model could not be written ({_io_reason(error)}); "
                                       "nothing was changed") from None
            bundle.write_bundle(path, self._weights(), self.meta, extra, check)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """The model in a folder, from its JSON description and safetensors weights, without PyTorch."""
        path = Path(path)
        meta = bundle.read_meta(path)
        try:
            describe_backbone(meta["backbone"]["name"])
        except ZoolensError as error:
            raise ZoolensError(f"{path}: {error}") from None
        prep = Preprocessing.from_dict(meta["preprocessing"])
        weight, bias, own_key = _head_and_backbone_key(path, meta, prep)
        model = cls(None, meta["classes"], prep, meta)
        model.path = path
        model._head = weight, bias
        model._feature_networks = [FeatureNetwork(own_key, weight.shape[1], prep, lambda: model.network.backbone)]
        if _open_set_file(path) is not None:
            model.open_set = OpenSetCheck.load(path / OPEN_SET_FILE, meta.get("open_set"))
            model._add_reference(meta.get("open_set", {}))
        else:
            log.warning("%s: no open-set data (made before zoolens had it): its answers are never 'none of these'; "
                        "train it again to get them", path)
        return model

    def _add_reference(self, recorded: dict) -> None:
        """The pretrained backbone's features beside the model's own, when its open-set check runs on them."""
        name = reference_name(self.path, recorded)
        width = self.open_set.bank.shape[1]
        if name is not None:
            try:
                self._feature_networks.append(pretrained_network(name, self.preprocessing, width))
            except ZoolensError as error:  # weights neither installed nor downloadable: the model still answers
                log.warning("%s: 'none of these' is off: its open-set check needs a pretrained backbone (%s)",
                            self.path, error)
                self.open_set = None
                return
        if width != self.feature_networks[-1].feature_dim:
            raise ZoolensError(f"{self.path / OPEN_SET_FILE}: its features do not fit the model's backbone")

    # ---- prediction --------------------------------------------------------------------------
    # ---- features ----------------------------------------------------------------------------
    # A model's features are its backbone's pooled features, followed, when its open-set check runs on the
    # pretrained backbone beside a fine-tuned or scratch one (`self.reference`), by that backbone's features:
    # every caller passes one array from `features_of_*` to `class_probabilities` and `predict_features`.
    def _own_width(self) -> int:
        if self._feature_networks is not None:
            return self._feature_networks[0].feature_dim
        return self.network.backbone.feature_dim

    def _own_features(self, features: np.ndarray) -> np.ndarray:
        return features[:, : self._own_width()]

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        beside = self.reference is not None or len(self._feature_networks or ()) > 1
        return features[:, self._own_width() :] if beside else features

    @property
    def feature_networks(self) -> list[FeatureNetwork]:
        """The backbones whose features this model's answers need: its own, then the pretrained one its open-set
        check runs on beside a fine-tuned or scratch one (`reference`)."""
        if self._feature_networks is not None:
            return self._feature_networks
        backbones = [self.network.backbone] + ([self.reference] if self.reference is not None else [])
        return [feature_network(backbone, self.preprocessing) for backbone in backbones]

    @property
    def feature_width(self) -> int:
        if self._feature_networks is not None:
            return sum(network.feature_dim for network in self._feature_networks)
        return sum(backbone.feature_dim for backbone in [self.network.backbone, self.reference] if backbone is not None)

    def _dense_layer(self) -> tuple[np.ndarray, np.ndarray]:
        if self._network is None:
            return self._head
        dense = self._network.head[-1]  # a model in training: its layer as it is now
        return dense.weight.detach().numpy(), dense.bias.detach().numpy()

    def class_logits(self, features: np.ndarray) -> np.ndarray:
        """The dense layer's outputs, before the temperature and the softmax."""
        # NumPy rather than torch for this one small matrix product: torch's per-call overhead
        # is several milliseconds on a busy 2-core CPU, a large share of a single prediction.
        weight, bias = self._dense_layer()
        return self._own_features(np.asarray(features, np.float32)) @ weight.T + bias

    def class_probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(self.class_logits(features) / self.temperature)

    def predict_proba_paths(self, paths: list[Path], progress: bool = False):
        """Class probabilities for photo files: (probabilities, usable mask, problems)."""
        found = self.features_of_paths(paths, progress)
        return self.class_probabilities(found.features), found.usable, found.problems

    def features_of_paths(self, paths: list[Path], progress: bool = False):
        found = [extract_features([Path(p) for p in paths], network, self.preprocessing, progress=progress)
                 for network in self.feature_networks]
        if len(found) == 1:
            return found[0]
        both = found[0]
        both.features = np.concatenate([f.features for f in found], axis=1)
        both.usable = found[0].usable & found[1].usable
        return both

    def features_of_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.features_of_pixels(np.stack([cropped_pixels(open_image(image), self.preprocessing)
                                                 for image in images]))

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Pooled features of photos already resized and cropped: 8-bit (N, S, S, 3) (`transforms.cropped_pixels`)."""
        outputs = [make_engine(network)(pixels) for network in self.feature_networks]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)

    def predict_proba_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.class_probabilities(self.features_of_images(images))

    def predict_proba_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities for photos already resized and cropped, 8-bit (N, S, S, 3)."""
        return self.class_probabilities(self.features_of_pixels(pixels))

    def not_sure_below(self, min_confidence: float = 0.0, open_set: str = "on") -> float:
        """The confidence under which the answer is "not sure": the user's, or the calibrated one if higher."""
        if open_set == "off" or self.open_set is None:
            return min_confidence
        return max(min_confidence, self.open_set.thresholds[open_set].confidence)

    def predict_features(self, sources: list[str], features: np.ndarray, top_k: int = 3, min_confidence: float = 0.0,
                         open_set: str = "on", image_of=None) -> list[Prediction]:
        """The answers for photos' pooled features: every surface's predictions come through here.
        `image_of(i)`, when given, opens photo i so that one without an animal can be told to be a person."""
        if open_set not in OPEN_SET_MODES:
            raise ZoolensError(f"open_set must be one of {', '.join(OPEN_SET_MODES)}, not {open_set!r}")
        if not len(sources):
            return []
        probabilities = self.class_probabilities(features)
        reasons, scores = [None] * len(sources), None
        if self.open_set is not None and open_set != "off":
            scores = self.open_set_scores(features)
            reasons = self.open_set.reasons(scores, open_set)
            if image_of is not None:
                reasons = self._people_among(reasons, image_of)
        threshold = self.not_sure_below(min_confidence, open_set)
        return [decide(source, probabilities[i], self.classes, top_k, threshold, reasons[i],
                       self.open_set.looks_like(scores, i) if scores is not None and reasons[i] else None, self.names)
                for i, source in enumerate(sources)]

    def name(self, label: str) -> str:
        """The name people read for one of its classes (its class folder's name, unless that is an id)."""
        return self.names.get(label, label)

    def open_set_scores(self, features: np.ndarray):
        """The open-set check's scores (`open_set.OpenSetScores`) for features from `features_of_*`."""
        return self.open_set.scores(self._check_features(features))

    def _people_among(self, reasons: list[str | None], image_of) -> list[str | None]:
        """Turned-away photos in which a face is found are "a person": ImageNet has no person class, and a model
        without the animal check (fine-tuned, scratch, non-animal classes) has no ImageNet at all."""
        if NO_ANIMAL not in reasons and UNLIKE_TRAINING_ANY not in reasons:
            return reasons
        from zoolens.models.faces import has_person

        refined = list(reasons)
        for i, reason in enumerate(reasons):
            if reason in (NO_ANIMAL, UNLIKE_TRAINING_ANY):
                try:
                    image = image_of(i)
                except ImageError:
                    continue
                if image is not None and has_person(image):
                    refined[i] = PERSON
        return refined

    def predict(self, inputs, top_k: int = 3, min_confidence: float = 0.0, progress: bool = False,
                open_set: str = "on") -> list[Prediction]:
        """Predict for photo paths, PIL images or raw bytes (one or a list). Each answer is a class, "not
        sure", "none of these" (with its reason) or an error for an unusable photo, never an exception.

        `min_confidence`: answer "not sure" below it (on top of the calibrated threshold); `open_set`: "on"
        (default), "strict" (turns more away) or "off" (never "none of these")."""
        inputs = input_list(inputs)
        results: list[Prediction | None] = [None] * len(inputs)
        path_positions = [i for i, item in enumerate(inputs) if is_path(item)]
        if path_positions:
            paths = [Path(inputs[i]) for i in path_positions]
            found = self.features_of_paths(paths, progress)
            reasons = dict(found.problems)
            usable = [n for n in range(len(paths)) if found.usable[n]]
            answers = self.predict_features([str(paths[n]) for n in usable], found.features[usable], top_k,
                                            min_confidence, open_set,
                                            image_of=lambda j: open_input(paths[usable[j]], PERSON_MIN_SIDE))
            for n, answer in zip(usable, answers):
                results[path_positions[n]] = answer
            for n, path in enumerate(paths):
                if not found.usable[n]:
                    results[path_positions[n]] = failed(str(path), reasons.get(str(path), "unusable"))
        for i, item in enumerate(inputs):
            if results[i] is None:
                source = source_name(item, i)
                try:
                    image = open_input(item)
                except ImageError as error:
                    results[i] = failed(source, error.reason)
                    continue
                results[i] = self.predict_features([source], self.features_of_images([image]), top_k, min_confidence,
                                                   open_set, image_of=lambda _, image=image: image)[0]
        return results  # type: ignore[return-value]
