"""`train()`: class folders in, a saved, evaluated model bundle out."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from zoolens.choices import DEFAULT_BACKBONE
from zoolens.data.corrections import Corrections, corrected
from zoolens.data.folders import ImageFolder, Sample, scan_folder
from zoolens.data.images import find_usable, open_image
from zoolens.data.split import Manifest, split_or_manifest, write_manifest
from zoolens.data.transforms import eval_transform, train_transform
from zoolens.errors import ZoolensError
from zoolens.evaluation.evaluate import evaluate_samples, write_evaluation
from zoolens.evaluation.plots import plot_training_curves
from zoolens.files import check_apart, output_lock
from zoolens.inference.bundle import check_model_target
from zoolens.inference.model import Model
from zoolens.models.available import has_pretrained_weights
from zoolens.models.backbones import build_backbone, imagenet_head, unfreeze_blocks
from zoolens.models.classifier import Classifier
from zoolens.models.open_set import OpenSetCheck, fit_open_set
from zoolens.runtime.distributed import Processes, start_processes
from zoolens.runtime.features import extract_features, extract_features_sharded
from zoolens.training.checkpoints import (
    TrainingCheckpoints,
    check_checkpoint_folder,
    checkpoint_folder,
    drop_unfinished_checkpoint,
)
from zoolens.training.common import seed_everything
from zoolens.training.config import WHERE_IT_RUNS, Phase, TrainConfig
from zoolens.training.loop import FabricDevice, FeatureBatches, LocalDevice, Optimization, PhotoBatches, run_phase

log = logging.getLogger(__name__)

THIN_CLASS_PHOTOS = 3  # fewer training photos than this in a class: warned about whatever the others have


def _say(progress: bool, message: str) -> None:
    """A step of the run, for people watching it: logged (the CLI shows it; `--quiet` and progress=False do not)."""
    if progress:
        log.info(message)


def _check_parts(manifest: Manifest, usable: dict[Path, bool]) -> None:
    train_classes = {s.label for s in manifest.part("train") if usable.get(s.path)}
    missing = [c for c in manifest.classes if c not in train_classes]
    if len(train_classes) < 2:
        raise ZoolensError(f"{manifest.root}: fewer than two classes have usable training photos")
    if missing:
        raise ZoolensError(f"{manifest.root}: class(es) {', '.join(missing)} have no usable training photos")
    if not any(usable.get(s.path) for s in manifest.part("val")):
        raise ZoolensError(f"{manifest.root}: too few photos to hold any out for validation; add photos")


class _PhotoDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample], classes: list[str], transform):
        self.samples = samples
        self.index = {name: i for i, name in enumerate(classes)}
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        image = open_image(sample.path, min_side=None)
        return self.transform(image), self.index[sample.label]


def _prepare_network(network: Classifier, phase: Phase) -> None:
    """What trains in a phase through the backbone: its last `phase.unfreeze` blocks (0: all) and the head."""
    network.freeze_batchnorm_statistics = not phase.learns_batchnorm
    network.set_backbone_trainable(not phase.unfreeze)
    if phase.unfreeze:
        for block in unfreeze_blocks(network.backbone)[-phase.unfreeze:]:
            for parameter in block.parameters():
                parameter.requires_grad = True
    network.backbone.info = replace(network.backbone.info, weights_tag="none")  # weights change from here on


def photo_batches(parts: dict[str, list[Sample]], classes: list[str], prep, config: TrainConfig,
                  processes: Processes) -> PhotoBatches:
    """Augmented training photos and plain validation photos, each process taking its share.

    `batch_size` is the whole run's: with several processes each takes its share of every batch, so the same
    command learns the same way on one device or many."""
    world_size, rank = processes.world_size, processes.rank
    workers = config.workers if config.workers is not None else min(4, max(1, (os.cpu_count() or 1) // world_size))
    batch_size = max(1, round(config.batch_size / world_size))
    train_set = _PhotoDataset(parts["train"], classes, train_transform(prep, config.augmentation))
    # Every world_size-th validation photo: the processes' sums add up to the loss over each photo exactly once.
    val_set = torch.utils.data.Subset(_PhotoDataset(parts["val"], classes, eval_transform(prep)),
                                      range(rank, len(parts["val"]), world_size))
    common = dict(batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
    # One shuffle of the whole set per epoch, each process taking every world_size-th photo of it: the global
    # batches are then the same on one process or several, and so is what the network learns.
    sampler = torch.utils.data.DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                                  seed=config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler,
                                               drop_last=len(train_set) > config.batch_size, **common)
    return PhotoBatches(train_loader, torch.utils.data.DataLoader(val_set, **common), sampler)


def run_phases(network: Classifier, features, parts: dict[str, list[Sample]], classes: list[str], prep,
               config: TrainConfig, processes: Processes, progress: bool,
               checkpoints: TrainingCheckpoints | None = None) -> list[dict]:
    """Every phase of the strategy in turn, through the one loop; the history of all of them."""
    optimization = Optimization(config.optimizer, config.weight_decay, config.label_smoothing, config.seed,
                                class_weights(parts["train"], classes) if config.balance == "weighted" else None)
    history: list[dict] = []
    for phase in config.phases():
        _say(progress, _phase_heading(phase, config, len(parts["train"])))
        start_loss = min((row["val_loss"] for row in history), default=None)
        if phase.on == "features":
            network.set_backbone_trainable(False)
            trained, batches, device = network.head, FeatureBatches(
                features["train"], features["val"], max(config.batch_size, 64), config.seed), LocalDevice()
        else:
            _prepare_network(network, phase)
            trained, batches = network, photo_batches(parts, classes, prep, config, processes)
            device = FabricDevice(config.accelerator, config.devices, config.num_nodes)
        done = run_phase(phase, trained, batches, optimization, device, start_loss=start_loss,
                         checkpoints=checkpoints, every_epoch=phase.on == "photos",
                         on_note=lambda line: _say(progress, line), show_progress=progress)
        history += done.rows
    network.eval()
    return history


def class_weights(train: list[Sample], classes: list[str]) -> tuple[float, ...]:
    """Inverse class frequencies scaled to a mean photo weight of 1 (scikit-learn's "balanced" rule): every
    class weighs the same in the loss, however many photos it has. A class without training photos gets 0."""
    counts = np.bincount([classes.index(sample.label) for sample in train], minlength=len(classes))
    present = max(int((counts > 0).sum()), 1)
    return tuple(float(len(train) / (present * count)) if count else 0.0 for count in counts)


def _phase_heading(phase: Phase, config: TrainConfig, photos: int) -> str:
    if phase.on == "features":
        return f"training the head ({config.optimizer}, early stopping on validation loss)"
    if phase.learns_batchnorm:
        return f"training {config.backbone} from scratch ({photos} photos per epoch)"
    blocks = f"the last {phase.unfreeze} blocks" if phase.unfreeze else "the whole network"
    augmented = "with augmentation" if config.augmentation else "without augmentation"
    return f"fine-tuning {blocks} ({photos} photos per epoch, {augmented})"


MIN_CALIBRATION_PHOTOS = 50


def calibrate_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al., 2017) on validation photos, so that confidences mean what they say.

    Left at 1 when the validation part is too small or has no mistake: the fit then only drives the
    temperature towards zero, making every answer look certain."""
    from scipy.optimize import minimize_scalar

    if len(labels) < MIN_CALIBRATION_PHOTOS or (logits.argmax(1) == labels).all():
        return 1.0

    logits_t = torch.from_numpy(logits).double()
    labels_t = torch.from_numpy(labels).long()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits_t / np.exp(log_t), labels_t))

    return float(np.exp(minimize_scalar(nll, bounds=(-2, 2), method="bounded").x))


def _write_history(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
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


def _own_features(model: Model, parts, features, config: TrainConfig, role: str) -> np.ndarray:
    """The model's own pooled features of one part: the cached frozen ones, or through its trained backbone."""
    if not config.trains_backbone:
        return features[role][0]
    return extract_features([s.path for s in parts[role]], model.network.backbone, model.preprocessing,
                            progress=False).features


def _labels(model: Model, samples) -> np.ndarray:
    index = {name: i for i, name in enumerate(model.classes)}
    return np.array([index[s.label] for s in samples], dtype=np.int64)


def _validation_logits(model: Model, val_features: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.network.head(torch.from_numpy(np.asarray(val_features, np.float32))).numpy()


def fit_open_set_check(model: Model, parts, features, config: TrainConfig, val_features: np.ndarray,
                       progress: bool) -> OpenSetCheck:
    """"None of these" for this model: the training photos as the bank, thresholds on the validation photos.
    It runs on frozen pretrained features, where the ImageNet checks hold: the model's own when frozen; for a
    fine-tuned or scratch model, the pretrained backbone's beside it (`Model.reference`), when there is one."""
    _say(progress, "fitting the open-set check ('none of these') on the validation photos")
    confidence = model.class_probabilities(val_features).max(axis=1)
    labels = _labels(model, parts["train"])
    reference = _reference_backbone(config) if config.trains_backbone else None
    if not config.trains_backbone or reference is not None:
        if reference is None:
            train_x, val_x, backbone = features["train"][0], val_features, model.network.backbone
        elif features is not None:  # fine-tuned: the features its head was warmed on are the pretrained ones
            train_x, val_x, backbone = features["train"][0], features["val"][0], reference
        else:
            backbone = reference
            train_x, val_x = (extract_features([s.path for s in parts[role]], reference, model.preprocessing,
                                               progress=progress).features for role in ("train", "val"))
        imagenet, why_not = imagenet_head(backbone)
        check = fit_open_set(train_x, labels, val_x, confidence, model.classes, imagenet, why_not,
                             share=config.open_set_share, seed=config.seed)
        check.summary["features"] = "own" if reference is None else {
            "backbone": reference.info.name, "weights": reference.info.weights_id,
            "why": "a network trained from scratch has no ImageNet classifier" if not config.pretrained
            else "the fine-tuned backbone's features no longer feed the ImageNet classifier"}
        model.reference = reference
        return check
    own = _own_features(model, parts, features, config, "train")
    check = fit_open_set(own, labels, val_features, confidence, model.classes, None,
                         f"no pretrained backbone with offline weights to run beside the {config.strategy} one",
                         share=config.open_set_share, seed=config.seed)
    check.summary["features"] = "own"
    return check


def _reference_backbone(config: TrainConfig):
    """The pretrained backbone beside a fine-tuned (the same one) or scratch (the default one) model."""
    name = config.backbone if config.pretrained else DEFAULT_BACKBONE
    if not has_pretrained_weights(name):
        return None
    try:
        return build_backbone(name, pretrained=True)
    except ZoolensError:
        return None


def train(data: str | Path, out: str | Path | None = None, *, config: TrainConfig | None = None,
          split_file: str | Path | None = None, corrections: str | Path | None = None, progress: bool = True,
          resume: bool = False, **options) -> Model:
    """Train a classifier on DATA (class folders, or an already split folder) and save it to `out`.

    Options are TrainConfig fields (backbone, strategy, optimizer, lr, epochs, ...). The returned Model
    carries `.evaluation` (its test-part results) and `.history` (one row per epoch).
    `corrections`: a corrections file (data/corrections.py) whose relabels and exclusions apply to the split;
    the photos are never touched, and the model records the file and its SHA-256.
    With `out`, every epoch is checkpointed to `<out>.partial/` (removed once the model is saved);
    `resume=True` goes on from there after an interruption. A model already in `out` is replaced, and only
    zoolens's own files in it; `out` is refused, before any work, when it holds something else and no model,
    when it and DATA are inside one another, or while another zoolens writes it (`.<out>.lock` beside it).
    """
    if out is None:
        return _train(data, out, config=config, split_file=split_file, corrections=corrections, progress=progress,
                          resume=resume, **options)
    _check_output(data, out)
    if not _first_process():  # the others of a multi-process run: the first holds the lock for them all
        return _train(data, out, config=config, split_file=split_file, corrections=corrections, progress=progress,
                          resume=resume, **options)
    with output_lock(out):
        _check_output(data, out)  # again, now that no other zoolens can be changing it
        try:
            return _train(data, out, config=config, split_file=split_file, corrections=corrections, progress=progress,
                          resume=resume,
                          **options)
        except BaseException:
            drop_unfinished_checkpoint(out)
            raise


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


def _train(data: str | Path, out: str | Path | None = None, *, config: TrainConfig | None = None,
           split_file: str | Path | None = None, corrections: str | Path | None = None, progress: bool = True,
           resume: bool = False, **options) -> Model:
    started = time.time()
    config, processes = _resolve(config, options)
    progress = progress and processes.is_main
    seed_everything(config.seed)
    folder, manifest, applied = _split(data, split_file, corrections, config, progress)
    backbone = build_backbone(config.backbone, pretrained=config.pretrained)
    prep = backbone.info.preprocessing.at_size(config.image_size) if config.image_size else backbone.info.preprocessing
    photos = _read_photos(folder, manifest, backbone, prep, config, processes, progress)
    photos.corrections = applied
    checkpoints = _start_checkpoints(out, _run_fingerprint(config, folder.root, manifest, applied), resume, processes,
                                     progress) if out is not None else None
    # Reseeded so that the new head starts from the same weights however much of the above drew random
    # numbers (decoding workers do on a cold feature cache, not on a warm one; one process's share or all).
    seed_everything(config.seed)
    network = Classifier(backbone, len(manifest.classes), dropout=config.dropout)
    history = run_phases(network, photos.features, photos.parts, manifest.classes, prep, config, processes, progress,
                         checkpoints)
    model = Model(network, manifest.classes, prep, {})
    model.names = {c: folder.name(c) for c in manifest.classes if folder.name(c) != c}
    if not processes.is_main:  # the first process calibrates, evaluates and saves; the others' work is done
        return model
    _calibrate(model, photos, config, progress)
    evaluation = None
    if photos.parts["test"]:
        evaluation = evaluate_samples(model, photos.parts["test"], f"the test part of the split of {folder.root}",
                                      progress=progress)
    elapsed = time.time() - started
    model.meta = _training_record(config, photos, processes, history, evaluation, model, elapsed)
    model.history = history
    model.evaluation = evaluation
    if out is not None:
        _save_training_outputs(model, manifest, history, evaluation, Path(out))
        checkpoints.remove()
        _say(progress, f"saved {out} in {elapsed:.0f} s")
    return model


def _resolve(config: TrainConfig | None, options: dict) -> tuple[TrainConfig, Processes]:
    """The run's settings, checked, with the devices its processes turned out to have."""
    config = replace(config or TrainConfig(), **options)
    config.validate()
    processes = start_processes(config.accelerator, config.devices, config.num_nodes)
    return replace(config, devices=processes.devices, num_nodes=processes.num_nodes), processes


def _split(data: str | Path, split_file: str | Path | None, corrections: str | Path | None, config: TrainConfig,
           progress: bool) -> tuple[ImageFolder, Manifest, Corrections | None]:
    folder = scan_folder(data)
    manifest, applied = corrected(split_or_manifest(folder, config.ratios, config.seed, split_file), corrections)
    if applied:
        _say(progress, f"{corrections}: {len(applied.relabel)} photo(s) relabelled, {len(applied.exclude)} left out")
    counts = manifest.counts()
    _say(progress, f"{folder.root}: {len(folder.classes)} classes, "
         + ", ".join(f"{role} {sum(counts[role].values())}" for role in ("train", "val", "test")))
    for path, reason in folder.skipped:
        _say(progress, f"  skipped {path}: {reason}")
    return folder, manifest, applied


def _read_photos(folder: ImageFolder, manifest: Manifest, backbone, prep, config: TrainConfig,
                 processes: Processes, progress: bool) -> TrainingPhotos:
    """Every photo of the split read once: through the frozen backbone into the feature cache when pretrained,
    only checked to decode when trained from scratch. Unreadable ones are left out, and named."""
    samples = [s for s, _ in manifest.rows]
    found = None
    if config.pretrained:
        _say(progress, f"features from {config.backbone} at {prep.input_size} px (cached for next time)")
        found = extract_features_sharded([s.path for s in samples], backbone, prep, processes, progress=progress)
        if found.computed_by_process:
            _say(progress, f"  {found.computed} new photos through the backbone, shared between "
                 f"{processes.world_size} processes ({' + '.join(map(str, found.computed_by_process))})")
        else:
            _say(progress, f"  {found.computed} photos through the backbone, {len(samples) - found.computed} from "
                 "the cache")
        usable_mask, problems = found.usable, found.problems
    else:
        usable_mask, problems = find_usable([s.path for s in samples], progress=progress)
    for path, reason in problems:
        _say(progress, f"  skipped {path}: {reason}")
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


def _calibrate(model: Model, photos: TrainingPhotos, config: TrainConfig, progress: bool) -> None:
    """Confidences that mean what they say (temperature), and "none of these" (the open-set check)."""
    val_features = _own_features(model, photos.parts, photos.features, config, "val")
    val_labels = _labels(model, photos.parts["val"])
    model.temperature = calibrate_temperature(_validation_logits(model, val_features), val_labels)
    model.open_set = fit_open_set_check(model, photos.parts, photos.features, config, val_features, progress)
    if model.open_set.summary["animal_check"] != "on":
        _say(progress, f"  open-set animal check {model.open_set.summary['animal_check']}")


def _training_record(config: TrainConfig, photos: TrainingPhotos, processes: Processes, history: list[dict],
                     evaluation, model: Model, elapsed: float) -> dict:
    """What zoolens.json says about how the model was made."""
    temperature = model.temperature
    return {
        "training": {**config.to_dict(), "phases": [asdict(phase) for phase in config.phases()],
                     "seconds": round(elapsed, 1), "epochs_run": len(history), "processes": processes.world_size},
        "data": {
            "root": str(photos.folder.root.resolve()),
            "presplit": photos.folder.presplit,
            "counts": photos.manifest.counts(),
            "skipped": [{"path": p, "reason": r} for p, r in photos.folder.skipped + photos.problems],
            "corrections": photos.corrections.record() if photos.corrections else None,
        },
        "calibration": {"temperature": temperature,
                        "fitted_on": f"{len(photos.parts['val'])} validation photos" if temperature != 1.0
                        else "not fitted"},
        "metrics": {k: v for k, v in evaluation.summary().items() if k not in ("skipped",)} if evaluation else {},
    }


def _start_checkpoints(out, fingerprint: dict, resume: bool, processes: Processes,
                       progress: bool) -> TrainingCheckpoints:
    """The first process owns `<out>.partial/`; the others read what it resumed from, and write nothing."""
    checkpoints = None
    if processes.is_main:
        checkpoints, note = TrainingCheckpoints.start(out, fingerprint, resume)
        if note:
            _say(progress, note)
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


def _save_training_outputs(model: Model, manifest: Manifest, history, evaluation, out: Path) -> None:
    """Every file of the new model, its evaluation included, is made first and saved in one step: a full disk or a
    failing figure never leaves a model beside a half-written evaluation/."""
    with tempfile.TemporaryDirectory(prefix="zoolens-outputs-") as scratch:
        scratch = Path(scratch)
        try:
            extra = {
                "split.csv": write_manifest(manifest, scratch / "split.csv"),
                "history.csv": _write_history(history, scratch / "history.csv"),
                "training_curves.png": plot_training_curves(history, scratch / "training_curves.png"),
            }
            if evaluation is not None:
                write_evaluation(evaluation, scratch / "evaluation")
                extra["evaluation"] = scratch / "evaluation"
        except OSError as error:
            raise ZoolensError(f"{out}: the model could not be written ({error.strerror or error}); "
                               "nothing was changed") from None
        model.save(out, extra_files=extra)

