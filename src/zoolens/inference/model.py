"""`Model`: a trained classifier you can load, save and ask about photos.

A model is a pipeline of fitted steps (`inference.steps`): features (its extractors) -> dense head -> temperature ->
open-set check, described by one immutable record (`inference.record.ModelRecord`), which is what its folder's
zoolens.json holds. It is made in one place, `Model(record, extraction, head, open_set, network)`, by `train()`
and by `Model.load`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from safetensors import SafetensorError

from zoolens import __version__, files
from zoolens.choices import OPEN_SET_MODES
from zoolens.data.transforms import Preprocessing
from zoolens.errors import ImageError, ZoolensError
from zoolens.inference import bundle
from zoolens.inference.prediction import (
    NONE_OF_THESE,
    NOT_SURE,
    Prediction,
    as_photo,
    decide,
    failed,
    input_list,
    is_path,
    open_input,
    source_name,
)
from zoolens.inference.record import (
    NO_OPEN_SET,
    BackboneDescription,
    EvaluationRecord,
    ModelRecord,
    read_evaluation,
    read_history,
    recorded_names,
)
from zoolens.inference.steps import DenseLayer, FeatureStep, TemperatureScaling
from zoolens.models.available import BackboneInfo, describe_backbone
from zoolens.models.faces import PERSON_MIN_SIDE
from zoolens.models.open_set import NO_ANIMAL, OPEN_SET_FILE, PERSON, UNLIKE_TRAINING_ANY, OpenSetCheck
from zoolens.runtime.extractor import Extractor, combined, pretrained_extractor
from zoolens.runtime.features import FeatureExtractor, feature_key, weights_fingerprint

if TYPE_CHECKING:
    from zoolens.models.classifier import Classifier

__all__ = ["NONE_OF_THESE", "NOT_SURE", "Model", "Prediction", "recorded_names"]
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


def _read_head(path: Path, record: ModelRecord) -> tuple[DenseLayer, list[str]]:
    """The dense layer, and the keys of the model's own features (one per member of an ensemble), read from
    model.safetensors with NumPy: the backbone's tensors are only hashed, and only when they are its own (fine-tuned,
    scratch); a frozen one's features are the pretrained backbone's."""
    described, classes = record.backbone, record.classes
    tensors = bundle.read_weights_numpy(path)
    weight, bias = tensors.get(HEAD_WEIGHT), tensors.get(HEAD_BIAS)
    dim = described.feature_dim
    if (weight is None or bias is None or weight.ndim != 2 or weight.shape != (len(classes), dim)
            or bias.shape != (len(classes),)):
        found = "no dense layer" if weight is None or bias is None else f"a dense layer of shape {list(weight.shape)}"
        raise ZoolensError(f"{path / bundle.WEIGHTS_FILE}: weights do not match the described model ({len(classes)} "
                           f"classes, {described.name} with {dim} features): {found}")
    head = DenseLayer(weight.astype(np.float32), bias.astype(np.float32), record.dropout,
                      tuple(member.feature_dim for member in described.members))
    if described.members:
        return head, [feature_key(_pretrained_info(path, member).weights_id, member.preprocessing)
                      for member in described.members]
    if described.weights_tag != "none":
        known = _known_backbone(path, described.name)
        weights = dataclasses.replace(known, weights_tag=described.weights_tag).weights_id
    else:
        weights = weights_fingerprint({name[len(BACKBONE_PREFIX):]: array for name, array in tensors.items()
                                       if name.startswith(BACKBONE_PREFIX)})
    return head, [feature_key(weights, record.preprocessing)]


def _known_backbone(path: Path, name: str) -> BackboneInfo:
    try:
        return describe_backbone(name)
    except ZoolensError as error:
        raise ZoolensError(f"{path}: {error}") from None


def _pretrained_info(path: Path, member: BackboneDescription) -> BackboneInfo:
    """An ensemble member's backbone, with the pretrained weights it recorded; refused in one line when it is not one
    zoolens knows, or not pretrained (an ensemble's members stay frozen)."""
    info = _known_backbone(path, member.name)
    if member.weights_tag == "none" or member.preprocessing is None or not member.feature_dim:
        raise ZoolensError(f"{path / bundle.META_FILE}: backbone member {member.name!r} is not described as a "
                           "pretrained network with its preprocessing and feature width")
    return dataclasses.replace(info, weights_tag=member.weights_tag, preprocessing=member.preprocessing)


def load_network(path: Path, record: ModelRecord) -> Classifier:
    """The PyTorch network of a saved model (Grad-CAM, export, saving again, training further need it)."""
    from zoolens.models.backbones import build_backbone
    from zoolens.models.classifier import Classifier

    described = record.backbone
    try:
        if described.members:
            backbone = _ensemble_network(path, record)
        else:
            backbone = build_backbone(described.name, pretrained=False)
            # A frozen backbone still holds the pretrained weights, so it shares their feature cache.
            backbone.info = BackboneInfo(backbone.info.name, backbone.info.source, backbone.info.preprocessing,
                                         described.weights_tag)
    except ZoolensError as error:
        raise ZoolensError(f"{path}: {error}") from None
    network = Classifier(backbone, len(record.classes), dropout=record.dropout)
    state = bundle.read_weights(path)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ZoolensError(
            f"{path / bundle.WEIGHTS_FILE}: weights do not match the described model ({len(record.classes)} classes, "
            f"{described.name}): {first}"
        ) from None
    return network.eval()


def _ensemble_network(path: Path, record: ModelRecord):
    """An ensemble's members built without weights (the model file holds them), as one `EnsembleBackbone`."""
    from zoolens.models.backbones import build_backbone
    from zoolens.models.ensemble import EnsembleBackbone

    described, members = record.backbone, []
    for member in described.members:
        backbone = build_backbone(member.name, pretrained=False)
        backbone.info = _pretrained_info(path, member)
        members.append(backbone)
    info = BackboneInfo(described.name, described.source, record.preprocessing, described.weights_tag)
    return EnsembleBackbone(members, [member.preprocessing for member in described.members], info)


def network_on(backbone, head: DenseLayer) -> Classifier:
    """The PyTorch network of a head on a backbone built apart (a frozen one, from its extractor)."""
    from zoolens.models.classifier import Classifier, set_head

    network = Classifier(backbone, len(head.bias), dropout=head.dropout)
    set_head(network, head.weight, head.bias)
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


def _own_extractor(path: Path, record: ModelRecord, keys: list[str], width: int,
                   network: Callable[[], Classifier]) -> Extractor:
    """The extractor a saved model's head reads: its backbone's features (cached under `keys`), or an ensemble's
    members' side by side, each built from the model's file only when its ONNX export is not cached."""
    described = record.backbone
    if not described.members:
        info = _known_backbone(path, described.name)
        return FeatureExtractor(keys[0], width, record.preprocessing, lambda: network().backbone,
                                dataclasses.replace(info, weights_tag=described.weights_tag))
    members = [FeatureExtractor(key, member.feature_dim, member.preprocessing,
                                functools.partial(lambda i: network().backbone.members[i], i),
                                _pretrained_info(path, member))
               for i, (key, member) in enumerate(zip(keys, described.members))]
    if sum(member.feature_dim for member in members) != width:
        raise ZoolensError(f"{path / bundle.META_FILE}: its backbone's members are not {width} features wide together")
    return combined(*members)


def _check_step(path: Path, record: ModelRecord, own: Extractor) -> tuple[OpenSetCheck | None, Extractor]:
    """A saved model's open-set check and the extractor it reads: its own features, or the pretrained backbone's
    beside a fine-tuned or scratch one. None (and its own extractor) when it has no check, or when that backbone's
    weights are neither installed nor downloadable (a warning: the model still answers, never "none of these")."""
    if _open_set_file(path) is None:
        log.warning("%s: no open-set data (made before zoolens had it): its answers are never 'none of these'; "
                    "train it again to get them", path)
        return None, own
    check = OpenSetCheck.load(path / OPEN_SET_FILE, dict(record.open_set))
    width = check.bank.shape[1]
    name = reference_name(path, dict(record.open_set))
    check_from = own
    if name is not None:
        try:
            check_from = pretrained_extractor(name, record.preprocessing, feature_dim=width)
        except ZoolensError as error:
            log.warning("%s: 'none of these' is off: its open-set check needs a pretrained backbone (%s)", path, error)
            return None, own
    if width != check_from.feature_dim:
        raise ZoolensError(f"{path / OPEN_SET_FILE}: its features do not fit the model's backbone")
    return check, check_from


class Model:
    """A trained classifier: features -> dense head -> temperature -> open-set check ("none of these"), each a
    fitted step (`extraction`, `head`, `calibration`, `open_set`), described by `record` (zoolens.json).

    It answers with ONNX Runtime and NumPy alone; its PyTorch network (`.network`) is made by `network()` only when
    something asks for it (Grad-CAM, export, training further): loaded from its folder, built on the pretrained
    backbone a frozen model kept, or the network a fine-tuned one trained."""

    def __init__(self, record: ModelRecord, extraction: FeatureStep, head: DenseLayer, open_set: OpenSetCheck | None,
                 network: Callable[[], Classifier], path: Path | None = None):
        self.record = record
        self.extraction = extraction
        self.head = head
        self.open_set = open_set  # None: never "none of these"
        self.path = path
        self._make_network = network

    @functools.cached_property
    def network(self) -> Classifier:
        return self._make_network()

    def with_record(self, record: ModelRecord) -> Model:
        """The same fitted steps described otherwise (how it was made, once that is known)."""
        return Model(record, self.extraction, self.head, self.open_set, self._make_network, self.path)

    @property
    def steps(self) -> list[tuple[str, object]]:
        """Its fitted steps in order, by name (scikit-learn's `Pipeline.steps`)."""
        return [("features", self.extraction), ("head", self.head), ("calibration", self.calibration),
                ("open_set", self.open_set)]

    @property
    def classes(self) -> list[str]:
        return list(self.record.classes)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.record.preprocessing

    @property
    def names(self) -> dict[str, str]:
        """{class: the name people read}, where it differs from the class folder's name."""
        return self.record.names

    @property
    def calibration(self) -> TemperatureScaling:
        return self.record.calibration

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    @property
    def meta(self) -> dict:
        """Its record as zoolens.json holds it."""
        return self.record.to_json()

    @property
    def extractor(self) -> Extractor:
        """What makes the features every answer takes: its own backbone's, then its open-set check's where that
        reads another (`extraction`)."""
        return self.extraction.extractor

    @property
    def feature_networks(self) -> tuple[FeatureExtractor, ...]:
        """The single backbones behind `extractor`, in order (the Ray engine ships each one's ONNX file)."""
        return self.extractor.members

    @property
    def feature_width(self) -> int:
        return self.extractor.feature_dim

    # Its results on the test part it held out, and its training history (one row per epoch): set by train() for a
    # new model, read from its folder (evaluation/metrics.json, history.csv) the first time a loaded one is asked.
    @functools.cached_property
    def evaluation(self) -> EvaluationRecord | None:
        return read_evaluation(self.path) if self.path is not None else None

    @functools.cached_property
    def history(self) -> list[dict] | None:
        return read_history(self.path) if self.path is not None else None

    def __repr__(self) -> str:
        made = " ".join(str(part) for part in (self.record.backbone.name,
                                               self.record.made.get("training", {}).get("strategy")) if part)
        shown = [self.name(c) for c in self.classes]
        classes = ", ".join(shown[:6]) + (f", ... ({len(shown) - 6} more)" if len(shown) > 6 else "")
        facts = [f"{len(self.classes)} classes: {classes}"]
        if self.evaluation is not None:
            facts.append(f"test accuracy {100 * self.evaluation.accuracy:.1f} %")
        where = [repr(str(self.path))] if self.path is not None else []
        return f"Model({', '.join(where + [made, '; '.join(facts)])})"

    # ---- persistence -------------------------------------------------------------------------
    def describe(self) -> dict:
        """The bundle's JSON: its record, with the open-set check it has now."""
        summary = self.open_set.summary if self.open_set is not None else NO_OPEN_SET
        return dataclasses.replace(self.record, open_set=summary).to_json()

    def _weights(self) -> dict[str, np.ndarray]:
        """The network's tensors by name, as NumPy arrays: its backbone's (from the kit while it is not built), then
        the head's."""
        return {**self.extraction.classes_from.tensors(), HEAD_WEIGHT: self.head.weight, HEAD_BIAS: self.head.bias}

    def save(self, path: str | Path, extra_files: dict[str, Path] | None = None, check=None) -> Path:
        """The model's folder written (`bundle.write_bundle`); `check(folder)` may refuse it before it is published."""
        path = Path(path)
        summary = self.open_set.summary if self.open_set is not None else NO_OPEN_SET
        self.record = dataclasses.replace(
            self.record, open_set=summary, zoolens_version=__version__,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        with tempfile.TemporaryDirectory(prefix="zoolens-save-") as scratch:
            extra = dict(extra_files or {})
            if self.open_set is not None:
                try:
                    extra[OPEN_SET_FILE] = self.open_set.save(Path(scratch) / OPEN_SET_FILE)
                except (OSError, SafetensorError) as error:
                    raise ZoolensError(f"{path}: the model could not be written ({_io_reason(error)}); "
                                       "nothing was changed") from None
            bundle.write_bundle(path, self._weights(), self.record.to_json(), extra, check)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """The model in a folder, from its JSON description and safetensors weights, without PyTorch."""
        path = Path(path)
        meta = bundle.read_meta(path)
        record = ModelRecord.from_json(meta)
        head, keys = _read_head(path, record)
        network = functools.cache(lambda: load_network(path, record))
        own = _own_extractor(path, record, keys, head.weight.shape[1], network)
        open_set, check_from = _check_step(path, record, own)
        return cls(record, FeatureStep(own, check_from), head, open_set, network, path)

    # ---- features, then answers --------------------------------------------------------------
    # A model's features are one array per photo, from `extractor`: its own backbone's, followed, when its open-set
    # check reads a pretrained backbone beside a fine-tuned or scratch one, by that one's (`extraction.split`). Every
    # caller passes what `features_of_*` gave to `class_probabilities` and `predict_features`.
    def class_logits(self, features: np.ndarray) -> np.ndarray:
        """The dense layer's outputs, before the temperature and the softmax."""
        return self.head.logits(self.extraction.split(np.asarray(features, np.float32))[0])

    def class_probabilities(self, features: np.ndarray) -> np.ndarray:
        return self.calibration.probabilities(self.class_logits(features))

    def predict_proba_paths(self, paths: list[Path], progress: bool = False):
        """Class probabilities for photo files: (probabilities, usable mask, problems)."""
        found = self.features_of_paths(paths, progress)
        return self.class_probabilities(found.features), found.usable, found.problems

    def features_of_paths(self, paths: list[Path], progress: bool = False):
        return self.extractor.features_of_paths([Path(p) for p in paths], progress)

    def features_of_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.extractor.features_of_images(images)

    def features_of_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Pooled features of photos already resized and cropped: 8-bit (N, S, S, 3) (`transforms.cropped_pixels`)."""
        return self.extractor.features_of_pixels(pixels)

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
        return self.open_set.scores(self.extraction.split(np.asarray(features))[1])

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
                source, photo = source_name(item, i), as_photo(item)
                try:
                    features = self.features_of_images([photo])
                except ImageError as error:
                    results[i] = failed(source, error.reason)
                    continue
                results[i] = self.predict_features([source], features, top_k, min_confidence, open_set,
                                                   image_of=lambda _, photo=photo: open_input(photo, PERSON_MIN_SIDE))[0]
        return results  # type: ignore[return-value]
