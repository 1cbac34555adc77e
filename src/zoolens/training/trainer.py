"""`train()`: class folders in, a saved, evaluated model bundle out."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from zoolens.choices import DEFAULT_BACKBONE
from zoolens.data.corrections import Corrections, corrected
from zoolens.data.folders import ImageFolder, Sample, scan_folder
from zoolens.data.images import find_usable
from zoolens.data.split import Manifest, split_or_manifest, write_manifest
from zoolens.data.transforms import Preprocessing
from zoolens.errors import ZoolensError
from zoolens.evaluation.evaluate import draw_evaluation_figures, evaluate_samples, write_evaluation
from zoolens.files import check_apart, output_lock
from zoolens.inference.bundle import check_model_target
from zoolens.inference.model import Model, network_on
from zoolens.inference.record import NO_OPEN_SET, BackboneDescription, ModelRecord
from zoolens.inference.steps import DenseLayer, FeatureStep, TemperatureScaling
from zoolens.models.available import describe_backbone, has_pretrained_weights
from zoolens.models.dense_head import DenseHead, FeatureBatches, NumpyDevice, fit_temperature
from zoolens.models.member_scaling import normalised_members
from zoolens.models.open_set import ENSEMBLE_NEIGHBOURS, NEIGHBOURS, OpenSetCheck, fit_open_set
from zoolens.plotting import FigureDrawer
from zoolens.progress import ProgressView, showing, shown
from zoolens.runtime.distributed import Processes, start_processes
from zoolens.runtime.extractor import (
    Extractor,
    ensemble_extractor,
    features_sharded,
    frozen_extractor,
    pretrained_extractor,
)
from zoolens.runtime.features import FeatureExtractor, cache_dir, extractor_of_backbone, may_fork_workers
from zoolens.runtime.pretrained_kit import find_kit
from zoolens.training.checkpoints import (
    TrainingCheckpoints,
    check_checkpoint_folder,
    checkpoint_folder,
    drop_unfinished_checkpoint,
)
from zoolens.training.common import seed_everything
from zoolens.training.config import WHERE_IT_RUNS, Phase, TrainConfig
from zoolens.training.loop import FabricDevice, Optimization, run_phase
from zoolens.training.recipe import sized_for_photos
from zoolens.training.run import Callback, Events

if TYPE_CHECKING:
    from zoolens.evaluation.metrics import Evaluation
    from zoolens.models.backbones import Backbone
    from zoolens.models.classifier import Classifier

log = logging.getLogger(__name__)

THIN_CLASS_PHOTOS = 3  # fewer training photos than this in a class: warned about whatever the others have


def _check_parts(manifest: Manifest, usable: dict[Path, bool]) -> None:
    train_classes = {s.label for s in manifest.part("train") if usable.get(s.path)}
    missing = [c for c in manifest.classes if c not in train_classes]
    if len(train_classes) < 2:
        raise ZoolensError(f"{manifest.root}: fewer than two classes have usable training photos")
    if missing:
        raise ZoolensError(f"{manifest.root}: class(es) {', '.join(missing)} have no usable training photos")
    if not any(usable.get(s.path) for s in manifest.part("val")):
        raise ZoolensError(f"{manifest.root}: too few photos to hold any out for validation; add photos")


def run_phases(network: Classifier | None, head: DenseHead, features, parts: dict[str, list[Sample]],
               classes: list[str], prep, config: TrainConfig, processes: Processes, events: Events,
               checkpoints: TrainingCheckpoints | None = None) -> list[dict]:
    """Every phase of the strategy in turn, through the one loop; the history of all of them. A phase on cached
    features trains `head` (NumPy); a phase through the backbone trains `network` (PyTorch), whose head starts
    from `head`'s weights when a phase on features came first."""
    optimization = Optimization(config.optimizer, config.weight_decay, config.label_smoothing, config.seed,
                                class_weights(parts["train"], classes) if config.balance == "weighted" else None)
    history: list[dict] = []
    for phase in config.phases():
        events.note(_phase_heading(phase, config, len(parts["train"])))
        start_loss = min((row["val_loss"] for row in history), default=None)
        if phase.on == "features":
            trained, batches, device = head, FeatureBatches(
                features["train"], features["val"], max(config.batch_size, 64), config.seed), NumpyDevice()
        else:
            from zoolens.training.photos import photo_batches, prepare_network

            if history:
                copy_head(head, network)
            prepare_network(network, phase)
            trained, batches = network, photo_batches(parts, classes, prep, config, processes)
            device = FabricDevice(config.accelerator, config.devices, config.num_nodes)
        done = run_phase(phase, trained, batches, optimization, device, start_loss=start_loss,
                         checkpoints=checkpoints, every_epoch=phase.on == "photos",
                         on_epoch=lambda row: events.emit("on_epoch_end", row), on_note=events.note)
        history += done.rows
    if network is not None:
        if all(phase.on == "features" for phase in config.phases()):
            copy_head(head, network)
        network.eval()
    return history


def copy_head(head: DenseHead, network: Classifier) -> None:
    """The NumPy head's weights into the PyTorch network's head."""
    from zoolens.models.classifier import set_head

    set_head(network, head.weight.data, head.bias.data)


def class_weights(train: list[Sample], classes: list[str]) -> tuple[float, ...]:
    """Inverse class frequencies scaled to a mean photo weight of 1 (scikit-learn's "balanced" rule): every
    class weighs the same in the loss, however many photos it has. A class without training photos gets 0."""
    counts = np.bincount([classes.index(sample.label) for sample in train], minlength=len(classes))
    present = max(int((counts > 0).sum()), 1)
    return tuple(float(len(train) / (present * count)) if count else 0.0 for count in counts)


def _phase_heading(phase: Phase, config: TrainConfig, photos: int) -> str:
    if phase.on == "features":
        return f"training the head ({config.optimizer}, early stopping on validation loss)"
    if phase.recipe:
        size = f", {config.image_size} px" if config.image_size else ""
        return f"fine-tuning the whole network by the recipe ({photos} photos per epoch{size})"
    if phase.learns_batchnorm:
        return f"training {config.backbone} from scratch ({photos} photos per epoch)"
    blocks = f"the last {phase.unfreeze} blocks" if phase.unfreeze else "the whole network"
    augmented = "with augmentation" if config.augmentation else "without augmentation"
    return f"fine-tuning {blocks} ({photos} photos per epoch, {augmented})"


def _write_history(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        # a recipe phase's rows add its rates, mixing and average (left empty in the head's rows)
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(name for row in rows for name in row)))
        writer.writeheader()
        writer.writerows(rows)
    return path


def thin_classes(train: list[Sample], classes: list[str]) -> list[str]:
    """Warnings for classes with far fewer training photos than the others (1 among thousands trained to 0 recall,
    silently): under a tenth of the median class, or under THIN_CLASS_PHOTOS."""
    counts = {name: 0 for name in classes}
    for sample in train:
        counts[sample.label] += 1
    median = float(np.median(list(counts.values())))
    warnings = []
    for name, count in counts.items():
        if count < THIN_CLASS_PHOTOS or count < median / 10:
            others = [n for c, n in counts.items() if c != name]
            warnings.append(f"class {name!r} has only {count} training photo{'s' * (count != 1)} (the others "
                            f"{min(others)}–{max(others)}): the model will seldom if ever answer it; add photos of "
                            "it, or leave it out")
    return warnings


def _usable_parts(manifest: Manifest, usable: dict[Path, bool]) -> dict[str, list[Sample]]:
    return {role: [s for s in manifest.part(role) if usable.get(s.path)] for role in ("train", "val", "test")}


def _feature_arrays(parts, feature_of: dict[Path, np.ndarray], classes: list[str]):
    index = {name: i for i, name in enumerate(classes)}
    arrays = {}
    for role, samples in parts.items():
        x = np.stack([feature_of[s.path] for s in samples]) if samples else np.zeros((0, 1), np.float32)
        arrays[role] = (x.astype(np.float32), np.array([index[s.label] for s in samples], dtype=np.int64))
    return arrays


def _labels(classes: list[str], samples) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[s.label] for s in samples], dtype=np.int64)


def _paths(samples: list[Sample]) -> list[Path]:
    return [s.path for s in samples]


def fit_open_set_check(classes: list[str], own: Extractor, confidence: np.ndarray, parts, features,
                       config: TrainConfig, val_features: np.ndarray,
                       events: Events) -> tuple[OpenSetCheck, Extractor]:
    """"None of these" for this model, and the extractor it reads: the training photos as the bank, thresholds on
    the validation photos (`confidence`: the calibrated model's on each). It runs on frozen pretrained features,
    where the ImageNet checks hold: the model's own when frozen (its kit's ImageNet head when nothing was built); for
    a fine-tuned or scratch model, the pretrained backbone's beside it, when there is one."""
    events.note("fitting the open-set check ('none of these') on the validation photos")
    labels = _labels(classes, parts["train"])
    if not config.trains_backbone:
        train_x, val_x, check_from = features["train"][0], val_features, own
    else:
        check_from = _reference_extractor(config, own.preprocessing)
        if check_from is None:
            check = fit_open_set(own.features_of_paths(_paths(parts["train"])).features, labels, val_features,
                                 confidence, classes, None,
                                 f"no pretrained backbone with offline weights to run beside the {config.strategy} one",
                                 share=config.open_set_share, seed=config.seed)
            check.summary["features"] = "own"
            return check, own
        if features is not None:  # fine-tuned: the features its head was warmed on are the pretrained ones
            train_x, val_x = features["train"][0], features["val"][0]
        else:
            train_x, val_x = (check_from.features_of_paths(_paths(parts[role]), progress=shown()).features
                              for role in ("train", "val"))
    imagenet, why_not = check_from.imagenet_head()
    check = fit_open_set(train_x, labels, val_x, confidence, classes, imagenet, why_not,
                         share=config.open_set_share, seed=config.seed,
                         neighbours=ENSEMBLE_NEIGHBOURS if len(check_from.members) > 1 else NEIGHBOURS)
    check.summary["features"] = "own" if check_from is own else {
        "backbone": check_from.info.name, "weights": check_from.info.weights_id,
        "why": "a network trained from scratch has no ImageNet classifier" if not config.pretrained
        else "the fine-tuned backbone's features no longer feed the ImageNet classifier"}
    return check, check_from


def _reference_extractor(config: TrainConfig, prep: Preprocessing) -> FeatureExtractor | None:
    """The pretrained backbone beside a fine-tuned (the same one) or scratch (the default one) model, at the model's
    preprocessing: from its kit when one is cached, else built; None when its weights are not to be had."""
    name = config.backbone if config.pretrained else DEFAULT_BACKBONE
    if not has_pretrained_weights(name):
        return None
    try:
        return pretrained_extractor(name, prep, find_kit(describe_backbone(name)))
    except ZoolensError:
        return None


def train(data: str | Path, out: str | Path | None = None, config: TrainConfig | None = None, *,
          split_file: str | Path | None = None, corrections: str | Path | None = None, progress: bool = True,
          resume: bool = False, callbacks: Iterable[Callback] = (), **overrides) -> Model:
    """Train a classifier on DATA (class folders, or an already split folder) and save it to `out`.

    `config` (default `TrainConfig()`) with `overrides`, TrainConfig fields (backbone, strategy, optimizer, lr,
    epochs, ...), replacing its own. The returned Model carries `.evaluation` (its test-part results) and `.history`
    (one row per epoch), as the model loaded from `out` does.
    `corrections`: a corrections file (data/corrections.py) whose relabels and exclusions apply to the split;
    the photos are never touched, and the model records the file and its SHA-256.
    With `out`, every epoch is checkpointed to `<out>.partial/` (removed once the model is saved);
    `resume=True` goes on from there after an interruption. A model already in `out` is replaced, and only
    zoolens's own files in it; `out` is refused, before any work, when it holds something else and no model,
    when it and DATA are inside one another, or while another zoolens writes it (`.<out>.lock` beside it).
    `callbacks`: `training.run.Callback`s told each step of the run (training.run.STEPS), each epoch's history row and
    its end (training/run.py); one that raises stops the run, and nothing is published in `out`. `progress=False`
    leaves out the progress view (progress.ProgressView: the steps' lines and the bars) the run is given otherwise.
    """
    options = _overrides(overrides)
    callbacks = [ProgressView(), *callbacks] if progress else list(callbacks)
    if out is not None:
        _check_output(data, out)
    # The others of a multi-process run do not lock: the first holds the lock for them all.
    owns_output = out is not None and _first_process()
    with output_lock(out) if owns_output else contextlib.nullcontext():
        if owns_output:
            _check_output(data, out)  # again, now that no other zoolens can be changing it
        try:
            return _run(data, out, config, options, split_file, corrections, resume, callbacks)
        except BaseException:
            if owns_output:
                drop_unfinished_checkpoint(out)
            raise

def _overrides(overrides: dict) -> dict:
    """`train()`'s keyword options, each a TrainConfig field; ZoolensError naming one that is not."""
    valid = [f.name for f in fields(TrainConfig)]
    unknown = [name for name in overrides if name not in valid]
    if unknown:
        verb = "is not a setting" if len(unknown) == 1 else "are not settings"
        raise ZoolensError(f"train(): {', '.join(map(repr, unknown))} {verb}; the settings are {', '.join(valid)}")
    return overrides


def _check_output(data: str | Path, out: str | Path) -> None:
    """What makes a run's output unsafe, found before any work: each a one-line ZoolensError."""
    check_apart(data, out)
    check_apart(data, checkpoint_folder(out), data_name="the data folder")
    check_model_target(Path(out))
    check_checkpoint_folder(out)


def _first_process() -> bool:
    """Whether this process is (or will be) the first of its run: not one that Lightning's launcher, torchrun
    or SLURM started as another rank (those are told so in the environment before train() runs)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "0").strip() or "0"
        if value != "0" and value.isdigit():
            return False
    return True


@dataclass
class TrainingPhotos:
    """The run's photos once split and read: the usable ones by part, their cached features when pretrained."""

    folder: ImageFolder
    manifest: Manifest
    parts: dict[str, list[Sample]]
    features: dict[str, tuple[np.ndarray, np.ndarray]] | None  # per part: (features, labels)
    problems: list[tuple[str, str]]  # photos that could not be read, with why
    corrections: Corrections | None = None  # the decisions applied to the split


@dataclass
class TrainingRun:
    """A run's state as its steps make it, what its callbacks read (`Callback.on_run_start(run)`)."""

    data: str | Path
    out: Path | None
    config: TrainConfig
    processes: Processes
    started: float  # time.time() when train() was called
    split_file: str | Path | None = None
    corrections: str | Path | None = None
    resume: bool = False
    photos: TrainingPhotos | None = None
    checkpoints: TrainingCheckpoints | None = None
    history: list[dict] = field(default_factory=list)
    model: Model | None = None
    val_features: np.ndarray | None = None  # the model's own features of the validation photos
    evaluation: Evaluation | None = None
    events: Events = field(default_factory=Events)


def _run(data, out, config: TrainConfig | None, options: dict, split_file, corrections, resume: bool,
         callbacks: list) -> Model:
    """The run's steps in turn (run.STEPS), each told to the callbacks: its own (checkpoints, then the saved outputs,
    when it has `out`) and the caller's. Only the first process of a multi-process run shows progress and saves."""
    started = time.time()
    config, processes = _resolve(config, options)
    if not processes.is_main:
        callbacks = [callback for callback in callbacks if not getattr(callback, "shows_progress", False)]
    own = [] if out is None else [Checkpointing(), *([SavedOutputs()] if processes.is_main else [])]
    events = Events([*own, *callbacks])
    run = TrainingRun(data, None if out is None else Path(out), config, processes, started, split_file, corrections,
                      resume, events=events)
    with showing(events.shows_progress), events.running(run):
        _steps(run)
        events.emit("on_run_end", run.model)
    return run.model


def _steps(run: TrainingRun) -> None:
    config, processes, events = run.config, run.processes, run.events
    seed_everything(config.seed)
    with events.step("split"):
        folder, manifest, applied = _split(run.data, run.split_file, run.corrections, config, events)
        config = run.config = sized_for_photos(config, _paths(manifest.part("train")), events.note)
    with events.step("features"):
        start = starting_extractor(config)
        run.photos = photos = _read_photos(folder, manifest, start, start.preprocessing, config, processes, events)
        photos.corrections = applied
    with events.step("training"):  # `Checkpointing` starts `run.checkpoints` as this step starts
        # Reseeded so that the new network starts from the same weights however much of the above drew random
        # numbers (decoding workers do on a cold feature cache, not on a warm one; one process's share or all).
        seed_everything(config.seed)
        network = _network_to_train(start, len(manifest.classes), config)
        head = DenseHead(start.feature_dim, len(manifest.classes), config.dropout, config.seed)
        run.history = run_phases(network, head, head_inputs(photos.features, start), photos.parts, manifest.classes,
                                 start.preprocessing, config, processes, events, run.checkpoints)
    # The new model's steps, fitted in turn: features (its own backbone's: the pretrained one it started from when
    # that stayed frozen, else the one trained) -> the dense head trained -> the temperature -> the open-set check,
    # the last two on its own features of the validation photos, by the first process only.
    own, dense, make_network = _trained_steps(start, network, head, config)
    calibration, check, check_from = TemperatureScaling(), None, own
    with events.step("calibration"):
        run.val_features = (photos.features["val"][0] if network is None
                            else own.features_of_paths(_paths(photos.parts["val"])).features)
        if processes.is_main:
            calibration = fit_calibration(dense, run.val_features, manifest.classes, photos.parts["val"])
    with events.step("open-set check"):
        if processes.is_main:
            confidence = calibration.probabilities(dense.logits(run.val_features)).max(axis=1)
            check, check_from = fit_open_set_check(manifest.classes, own, confidence, photos.parts, photos.features,
                                                   config, run.val_features, events)
            if check.summary["animal_check"] != "on":
                events.note(f"  open-set animal check {check.summary['animal_check']}")
    run.model = _assembled_model(own, dense, calibration, check, check_from, make_network, photos, config)
    if not processes.is_main:  # the first process evaluates and saves; the others' work is done
        return
    with events.step("evaluation"):
        if photos.parts["test"]:
            run.evaluation = evaluate_samples(run.model, photos.parts["test"],
                                              f"the test part of the split of {folder.root}",
                                              on_scored=lambda evaluation: events.emit("on_evaluation", evaluation))
    model = run.model.with_record(replace(run.model.record, made=MappingProxyType(
        _training_record(config, photos, processes, run.history, run.evaluation, time.time() - run.started))))
    model.history = run.history
    model.evaluation = run.evaluation
    run.model = model
    with events.step("save"):  # `SavedOutputs` publishes the model into `out` as this step ends
        pass


class Checkpointing(Callback):
    """A run into `out` checkpoints every epoch in `<out>.partial/` (the training loop writes them), started as the
    training step starts (resumed from there with `resume`) and removed once the model is saved, or when the model it
    made cannot be (its epochs learnt from the same damaged cache: not to be resumed)."""

    def on_run_start(self, run: TrainingRun) -> None:
        self.run = run

    def on_step_start(self, step: str) -> None:
        if step == "training":
            run = self.run
            run.checkpoints = _start_checkpoints(run.out, _run_fingerprint(
                run.config, run.photos.folder.root, run.photos.manifest, run.photos.corrections), run.resume,
                run.processes, run.events)

    def on_run_end(self, result) -> None:
        # At the run's end, not the save step's: the callbacks before SavedOutputs see that step end before the model
        # is written, and a save that fails keeps the finished epochs for --resume.
        if self.run.checkpoints is not None:
            self.run.checkpoints.remove()

    def on_run_error(self, error: BaseException) -> None:
        if isinstance(error, UnpublishableModel) and self.run.checkpoints is not None:
            self.run.checkpoints.remove()


class SavedOutputs(Callback):
    """The files saved beside a new model, made in a scratch folder while the run goes on, then published with the
    model in one step as the save step ends. Its figures are drawn by a process of their own
    (`plotting.FigureDrawer`), which starts with the run, so that Matplotlib's import and the drawing overlap with
    training and evaluating."""

    def on_run_start(self, run: TrainingRun) -> None:
        self.run = run
        self.figures = FigureDrawer(separate=may_fork_workers() and run.processes.world_size == 1)
        self.scratch = Path(tempfile.mkdtemp(prefix="zoolens-outputs-"))
        self.curves = None
        self.evaluation_figures = None

    def on_step_end(self, step: str) -> None:
        if step == "training":
            self.curves = self.figures.draw("zoolens.evaluation.plots:plot_training_curves", self.run.history,
                                            self.scratch / "training_curves.png")
        elif step == "save":
            self.save()

    def on_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation_figures = draw_evaluation_figures(evaluation, self.scratch / "evaluation", self.figures)

    def save(self) -> None:
        """Every file of the new model, its evaluation included, is made first and saved in one step: a full disk or
        a failing figure never leaves a model beside a half-written evaluation/. The model is saved only once its
        written folder loads back and answers as it does here (`_answers_like`)."""
        run, out = self.run, self.run.out
        try:
            extra = {
                "split.csv": write_manifest(run.photos.manifest, self.scratch / "split.csv"),
                "history.csv": _write_history(run.history, self.scratch / "history.csv"),
            }
            if run.evaluation is not None:
                write_evaluation(run.evaluation, self.scratch / "evaluation", self.figures, self.evaluation_figures)
                extra["evaluation"] = self.scratch / "evaluation"
            extra["training_curves.png"] = self.curves.result()
        except OSError as error:
            raise ZoolensError(f"{out}: the model could not be written ({error.strerror or error}); "
                               "nothing was changed") from None
        elapsed = time.time() - run.started
        run.model.save(out, extra_files=extra,
                       check=_answers_like(run.model, _check_row(run.model, run.photos, run.val_features), out))
        run.events.note(f"saved {out} in {elapsed:.0f} s")

    def on_run_end(self, result) -> None:
        self.close()

    def on_run_error(self, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        self.figures.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _network_to_train(start: Extractor, classes: int, config: TrainConfig) -> Classifier | None:
    """The PyTorch network whose backbone trains (fine-tuned, scratch); None when only the head does, on features."""
    if not config.trains_backbone:
        return None
    from zoolens.models.classifier import Classifier

    return Classifier(start.backbone(), classes, dropout=config.dropout)


def _trained_steps(start: Extractor, network: Classifier | None, head: DenseHead,
                   config: TrainConfig) -> tuple[Extractor, DenseLayer, Callable]:
    """The extractor the trained head reads (the one the run started from when only the head trained, else the
    trained backbone's), the head as a fitted step, and how the PyTorch network is had."""
    if network is None:
        own = start
        dense = DenseLayer(np.array(head.weight.data, np.float32), np.array(head.bias.data, np.float32),
                           config.dropout, member_widths(start))
        return own, dense, functools.cache(lambda: network_on(own.backbone(), dense))
    own = extractor_of_backbone(network.backbone, start.preprocessing)
    layer = network.head[-1]
    dense = DenseLayer(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy(), config.dropout)
    return own, dense, lambda: network


def member_widths(extractor: Extractor) -> tuple[int, ...]:
    """Each member's feature width where the extractor is an ensemble's, whose head reads each member's features scaled
    to one length (`models.member_scaling`); () for one backbone."""
    return tuple(member.feature_dim for member in extractor.members) if len(extractor.members) > 1 else ()


def head_inputs(features, extractor: Extractor):
    """The parts' cached features as the dense head reads them (`models.member_scaling`)."""
    widths = member_widths(extractor)
    if features is None or not widths:
        return features
    return {role: (normalised_members(x, widths), y) for role, (x, y) in features.items()}


def fit_calibration(dense: DenseLayer, val_features: np.ndarray, classes: list[str],
                    val: list[Sample]) -> TemperatureScaling:
    """The temperature that makes the head's confidences on the validation photos mean what they say."""
    temperature = fit_temperature(dense.logits(val_features), _labels(classes, val))
    return TemperatureScaling(temperature, f"{len(val)} validation photos" if temperature != 1.0 else "not fitted")


def _assembled_model(own: Extractor, dense: DenseLayer, calibration: TemperatureScaling, check: OpenSetCheck | None,
                     check_from: Extractor, make_network: Callable, photos: TrainingPhotos,
                     config: TrainConfig) -> Model:
    """The new model from its fitted steps, and the record that describes it."""
    classes = photos.manifest.classes
    record = ModelRecord(
        classes=tuple(classes), class_names=tuple(photos.folder.name(c) for c in classes),
        backbone=BackboneDescription.of(own),
        preprocessing=own.preprocessing, dropout=config.dropout,
        parameters=own.parameters() + dense.weight.size + dense.bias.size, calibration=calibration,
        open_set=MappingProxyType(check.summary if check is not None else NO_OPEN_SET))
    return Model(record, FeatureStep(own, check_from), dense, check, make_network)


def starting_extractor(config: TrainConfig) -> Extractor:
    """The backbone a run starts from, as the extractor of its features at the run's size: a pretrained one that
    stays frozen from its cached kit when there is one (nothing built, no PyTorch), else built now (and then, when
    it stays frozen, kept as a kit for next time); an ensemble's members so, side by side."""
    if config.is_ensemble:
        return ensemble_extractor(config.backbone, config.image_size)
    info = describe_backbone(config.backbone)
    prep = info.preprocessing.at_size(config.image_size) if config.image_size else info.preprocessing
    if config.pretrained and not config.trains_backbone:
        return frozen_extractor(config.backbone, prep)
    return extractor_of_backbone(_built(config), prep)


def _built(config: TrainConfig) -> Backbone:
    from zoolens.models.backbones import build_backbone

    return build_backbone(config.backbone, pretrained=config.pretrained)


def _resolve(config: TrainConfig | None, options: dict) -> tuple[TrainConfig, Processes]:
    """The run's settings, checked, with the devices its processes turned out to have."""
    config = replace(config or TrainConfig(), **options)
    config.validate()
    processes = start_processes(config.accelerator, config.devices, config.num_nodes)
    return replace(config, devices=processes.devices, num_nodes=processes.num_nodes), processes


def _split(data: str | Path, split_file: str | Path | None, corrections: str | Path | None, config: TrainConfig,
           events: Events) -> tuple[ImageFolder, Manifest, Corrections | None]:
    folder = scan_folder(data)
    manifest, applied = corrected(split_or_manifest(folder, config.ratios, config.seed, split_file, config.group_by,
                                                    config.sequence_gap), corrections)
    if applied:
        events.note(f"{corrections}: {len(applied.relabel)} photo(s) relabelled, {len(applied.exclude)} left out")
    counts = manifest.counts()
    events.note(f"{folder.given or folder.root}: {len(folder.classes)} classes, "
         + ", ".join(f"{role} {sum(counts[role].values())}" for role in ("train", "val", "test")))
    if manifest.grouping:
        events.note(f"  {manifest.grouping}")
    for path, reason in folder.skipped:
        events.note(f"  skipped {path}: {reason}")
    return folder, manifest, applied


def _read_photos(folder: ImageFolder, manifest: Manifest, backbone: Extractor, prep, config: TrainConfig,
                 processes: Processes, events: Events) -> TrainingPhotos:
    """Every photo of the split read once: through the frozen backbone into the feature cache when pretrained,
    only checked to decode when trained from scratch. Unreadable ones are left out, and named."""
    samples = [s for s, _ in manifest.rows]
    found = None
    if config.pretrained:
        events.note(f"features from {config.backbone} at {prep.input_size} px (cached for next time)")
        found = features_sharded(backbone, [s.path for s in samples], processes)
        if found.computed_by_process:
            events.note(f"  {found.computed} new photos through the backbone, shared between "
                 f"{processes.world_size} processes ({' + '.join(map(str, found.computed_by_process))})")
        else:
            events.note(f"  {found.computed} photos through the backbone, {len(samples) - found.computed} from "
                 "the cache")
        usable_mask, problems = found.usable, found.problems
    else:
        usable_mask, problems = find_usable([s.path for s in samples])
    for path, reason in problems:
        events.note(f"  skipped {path}: {reason}")
    usable = {s.path: bool(ok) for s, ok in zip(samples, usable_mask)}
    _check_parts(manifest, usable)
    parts = _usable_parts(manifest, usable)
    if processes.is_main:
        for warning in thin_classes(parts["train"], manifest.classes):
            log.warning("%s: %s", folder.root, warning)
    features = None
    if found is not None:
        features = _feature_arrays(parts, {s.path: found.features[i] for i, s in enumerate(samples)}, manifest.classes)
    return TrainingPhotos(folder, manifest, parts, features, problems)


def _check_row(model: Model, photos: TrainingPhotos, val_features: np.ndarray) -> np.ndarray:
    """One validation photo's features as the saved model's answers take them: its own, then the pretrained
    backbone's beside a fine-tuned one where the run has them (else its own alone, answered without the open-set
    check)."""
    row = val_features[:1]
    if model.extraction.separate and photos.features is not None:
        row = np.concatenate([row, photos.features["val"][0][:1]], axis=1)
    return np.asarray(row, np.float32)


class UnpublishableModel(ZoolensError):
    """A new model that does not load back or answer: never saved."""


def _answers_like(model: Model, row: np.ndarray, out) -> Callable[[Path], None]:
    """The last check before a new model replaces anything in `out`: its written folder's weights are finite, it
    loads back as `Model.load` loads it (no PyTorch) and answers `row` as the model trained here does. A damaged
    cache (a kit or features of NaN, of another network) makes a model that fails it, and is refused in one line."""
    expected = model.class_probabilities(row)

    def check(folder: Path) -> None:
        from zoolens.inference.bundle import non_finite_weights

        problem = None
        try:
            bad = non_finite_weights(folder)
            if bad or not np.isfinite(expected).all():
                problem = f"its weights hold NaN or infinite values ({', '.join(bad[:3]) or 'its answers'})"
            else:
                loaded = Model.load(folder)
                answered = loaded.class_probabilities(row)
                open_set = "on" if loaded.open_set is not None and row.shape[1] == loaded.feature_width else "off"
                loaded.predict_features(["check"], row, open_set=open_set)
                if not np.allclose(answered, expected, atol=1e-5):
                    problem = "it answers otherwise once loaded back"
        except (ZoolensError, ValueError, OSError) as error:
            problem = f"it does not load back: {' '.join(str(error).split())[:200]}"
        if problem is not None:
            raise UnpublishableModel(f"{out}: the new model was not saved ({problem}); any model there is unchanged. A "
                               f"damaged cache makes this: remove {cache_dir()} and train again")

    return check


def _training_record(config: TrainConfig, photos: TrainingPhotos, processes: Processes, history: list[dict],
                     evaluation, elapsed: float) -> dict:
    """What zoolens.json says about how the model was made (`ModelRecord.made`)."""
    return {
        "training": {**config.to_dict(), "phases": [asdict(phase) for phase in config.phases()],
                     "seconds": round(elapsed, 1), "epochs_run": len(history), "processes": processes.world_size},
        "data": {
            "root": str(photos.folder.root.resolve()),
            **({"source": photos.folder.source, "given": str(photos.folder.given or photos.folder.root)}
               if photos.folder.source != "folders" else {}),
            "split_grouped_by": photos.manifest.groups.by if photos.manifest.groups else None,
            "presplit": photos.folder.presplit,
            "counts": photos.manifest.counts(),
            "skipped": [{"path": p, "reason": r} for p, r in photos.folder.skipped + photos.problems],
            "corrections": photos.corrections.record() if photos.corrections else None,
        },
        "metrics": {k: v for k, v in evaluation.summary().items() if k not in ("skipped",)} if evaluation else {},
    }


def _start_checkpoints(out, fingerprint: dict, resume: bool, processes: Processes,
                       events: Events) -> TrainingCheckpoints:
    """The first process owns `<out>.partial/`; the others read what it resumed from, and write nothing."""
    checkpoints = None
    if processes.is_main:
        checkpoints, note = TrainingCheckpoints.start(out, fingerprint, resume)
        if note:
            events.note(note)
    processes.barrier()
    return checkpoints or TrainingCheckpoints.follow(out, fingerprint)


def _run_fingerprint(config: TrainConfig, root: Path, manifest: Manifest, corrections: Corrections | None) -> dict:
    """What a checkpoint must agree on to be resumed: the options that shape training, the data and its split,
    and the corrections applied to it (their file's SHA-256: an edited file trains anew)."""
    split = "\n".join(f"{sample.path}\t{role}" for sample, role in manifest.rows)
    fingerprint = {
        **{k: v for k, v in config.to_dict().items() if k not in WHERE_IT_RUNS},
        "data": str(root.resolve()),
        "split_sha256": hashlib.sha256(split.encode("utf-8", "surrogateescape")).hexdigest(),
    }
    if corrections:  # only then, so that checkpoints of runs without corrections stay resumable
        fingerprint["corrections_sha256"] = corrections.sha256
    return fingerprint
