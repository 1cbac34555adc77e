"""`train()`: class folders in, a saved, evaluated model bundle out."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from zoolens.data.folders import Sample, scan_folder
from zoolens.data.images import find_usable, open_image
from zoolens.data.split import Manifest, read_manifest, split_folder, write_manifest
from zoolens.data.transforms import Augmentation, eval_transform, train_transform
from zoolens.errors import ConfigError, ZoolensError
from zoolens.evaluation.evaluate import evaluate_samples, write_evaluation
from zoolens.evaluation.plots import plot_training_curves
from zoolens.files import check_apart, output_lock
from zoolens.inference.bundle import check_model_target
from zoolens.inference.model import Model
from zoolens.models.backbones import (
    DEFAULT_BACKBONE,
    build_backbone,
    has_pretrained_weights,
    imagenet_head,
    unfreeze_blocks,
)
from zoolens.models.classifier import Classifier
from zoolens.models.open_set import DEFAULT_SHARE, OpenSetCheck, fit_open_set
from zoolens.runtime.distributed import Processes, in_process_group, start_processes
from zoolens.runtime.features import extract_features, extract_features_sharded
from zoolens.training.checkpoints import (
    TrainingCheckpoints,
    check_checkpoint_folder,
    checkpoint_folder,
    drop_unfinished_checkpoint,
    phase_state,
    strip_prefix,
    unflatten_optimizer_state,
)
from zoolens.training.common import OPTIMIZERS, epoch_line, seed_everything
from zoolens.training.head_loop import fit_dense_head

if TYPE_CHECKING:  # Lightning is imported only to train through the backbone: a frozen run does without it
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping

    from zoolens.training.lightning_task import KeepBestWeights, SaveEachEpoch

log = logging.getLogger(__name__)

STRATEGIES = ("frozen", "finetune", "scratch")
# Whole-network learning rates: adaptive optimizers' first steps move every weight by about lr, so they
# need a small one (measured: 1e-4 made validation loss worse than the warm head, 3e-5 improved on it).
HEAD_LR = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2}
FINETUNE_LR = {"adam": 3e-5, "rmsprop": 3e-5, "sgd": 1e-4}  # SGD at 1e-3 collapsed on CIFAR animals (measured)
SCRATCH_LR = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2}
# Where and how fast a run goes, not what it learns: left out when comparing runs' settings.
WHERE_IT_RUNS = ("accelerator", "devices", "num_nodes", "workers")
THIN_CLASS_PHOTOS = 3  # fewer training photos than this in a class: warned about whatever the others have


@dataclass(frozen=True)
class Phase:
    """One stage of a training strategy, resolved before training starts (and recorded in zoolens.json)."""

    name: str  # "head", "finetune" or "scratch"
    on: str  # "features": the dense head on cached frozen features; "photos": through the backbone
    lr: float
    epochs: int  # at most: early stopping on the validation loss ends it sooner
    patience: int


@dataclass
class TrainConfig:
    backbone: str = DEFAULT_BACKBONE
    strategy: str = "frozen"
    optimizer: str = "adam"
    lr: float | None = None  # default: 1e-3 for the head, FINETUNE_LR when fine-tuning
    epochs: int | None = None  # default: 60 for the head (early stopping ends it sooner), 5 fine-tuning
    batch_size: int = 32
    patience: int = 8
    weight_decay: float = 1e-4
    dropout: float = 0.5  # measured best of 0.2/0.5 on animals3 (98.7 % vs 98.3 %) with Imagewoof within noise
    label_smoothing: float = 0.0
    ratios: str = "70/10/20"
    seed: int = 0
    image_size: int | None = None  # default: the backbone's own input size
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    head_epochs: int = 60
    unfreeze: int = 0  # fine-tuning: how many of the backbone's last blocks train (0: all)
    accelerator: str = "auto"
    devices: str | int = "auto"  # per machine; more than one trains with DDP, one process per device
    num_nodes: int = 1
    workers: int | None = None
    open_set_share: float = DEFAULT_SHARE  # of the validation photos the open-set check may turn away

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"{self.strategy!r}: choose from {', '.join(STRATEGIES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"{self.optimizer!r}: choose from {', '.join(OPTIMIZERS)}")
        for name in ("lr", "epochs", "image_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be positive, not {value}")
        if self.unfreeze < 0:
            raise ConfigError("unfreeze", f"must be 0 (all blocks) or more, not {self.unfreeze}")
        if self.num_nodes < 1:
            raise ConfigError("num_nodes", f"must be at least 1, not {self.num_nodes}")
        if self.batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, not {self.batch_size}")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout", f"must be in [0, 1), not {self.dropout}")
        if not 0 < self.open_set_share < 0.5:
            raise ConfigError("open_set_share", f"must be above 0 and below 0.5, not {self.open_set_share}")

    def phases(self) -> list[Phase]:
        """The strategy as data: what trains in turn, on what, at which learning rate and for how many epochs.
        `lr` and `epochs` apply to the strategy's last phase; the others keep their defaults."""
        head = Phase("head", "features", self.lr if self.strategy == "frozen" and self.lr else HEAD_LR[self.optimizer],
                     self.epochs if self.strategy == "frozen" and self.epochs else self.head_epochs, self.patience)
        if self.strategy == "frozen":
            return [head]
        if self.strategy == "finetune":
            return [head, Phase("finetune", "photos", self.lr or FINETUNE_LR[self.optimizer], self.epochs or 5,
                                self.patience)]
        return [Phase("scratch", "photos", self.lr or SCRATCH_LR[self.optimizer], self.epochs or 10, self.patience)]

    def on_one_device(self) -> TrainConfig:
        """For studies, k-fold and tuning, which train one model after another in this one process."""
        if str(self.devices) not in ("auto", "1") or self.num_nodes != 1:
            raise ConfigError("devices", "must be 1 (or auto) for studies, k-fold and tuning, which train one model at "
                                         "a time; several devices are for zoolens train")
        return replace(self, devices=1)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return data


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


def _trainer(config: TrainConfig, epochs: int, callbacks: list, progress: bool) -> pl.Trainer:
    """All the run's devices, with DDP when there are several processes."""
    import lightning.pytorch as pl

    from zoolens.training.lightning_task import quiet_lightning

    quiet_lightning()
    several = in_process_group()
    return pl.Trainer(
        max_epochs=epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if several else "auto",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=tempfile.gettempdir(),
    )


def _finished_phase(checkpoints: TrainingCheckpoints | None, phase: str, network, progress: bool) -> list[dict] | None:
    """The history of a phase an interrupted run had finished, its weights loaded into `network`; else None."""
    saved = checkpoints.phase(phase) if checkpoints else None
    if not (saved and saved["finished"]):
        return None
    network.load_state_dict(strip_prefix(checkpoints.load_tensors(phase), "network."))
    _say(progress, f"  {phase}: finished before the interruption ({saved['epoch']} epochs); skipped")
    return saved["history"]


def _fit(network, train_loader, val_loader, config: TrainConfig, phase: str, lr: float, epochs: int,
         progress: bool, baseline_loss: float | None = None,
         checkpoints: TrainingCheckpoints | None = None) -> list[dict]:
    """A Lightning phase through the backbone, checkpointed after every epoch."""
    from lightning.pytorch.callbacks import EarlyStopping

    from zoolens.training.lightning_task import (
        ClassificationTask,
        EpochHistory,
        KeepBestWeights,
        SaveEachEpoch,
        progress_state,
    )

    if (rows := _finished_phase(checkpoints, phase, network, progress)) is not None:
        return rows
    saved = checkpoints.phase(phase) if checkpoints else None
    done = saved["epoch"] if saved else 0
    # Reseeded per phase: decoding workers draw from the global generator, and a warm feature cache
    # (no workers) must train exactly the same network as a cold one. A resumed phase draws new shuffles.
    seed_everything(config.seed + done)
    history = EpochHistory(phase, epochs, echo=progress, rows_so_far=saved["history"] if saved else None)
    best = KeepBestWeights() if baseline_loss is None else KeepBestWeights(network, baseline_loss)
    stop = EarlyStopping(monitor="val_loss", patience=config.patience, mode="min")
    task = ClassificationTask(network, config.optimizer, lr, config.weight_decay, config.label_smoothing)
    callbacks = [history, best, stop]
    if checkpoints:
        save = SaveEachEpoch(checkpoints, phase, history, best, stop, first_epoch=done)
        if saved:
            _resume_phase(phase, saved, checkpoints.load_tensors(phase), network, best, stop, save, progress)
        callbacks.append(save)
    if done < epochs and not (saved and saved["stopped_early"]):
        _trainer(config, epochs - done, callbacks, progress).fit(task, train_loader, val_loader)
    else:
        best.restore_into(network)
    if best.best_epoch:
        _say(progress, f"  best validation loss {best.best_loss:.4f} at {phase} epoch {best.best_epoch}")
    elif baseline_loss is not None:
        _say(progress, f"  no {phase} epoch beat validation loss {baseline_loss:.4f}; keeping the network it started from")
    if checkpoints:
        checkpoints.save_epoch(phase, len(history.rows), network, None, None, progress_state(history, best, stop),
                               finished=True)
    return history.rows


def _resume_phase(phase: str, saved: dict, tensors: dict, network, best: KeepBestWeights, stop: EarlyStopping,
                  save: SaveEachEpoch, progress: bool) -> None:
    """Put a phase back where its last checkpoint left it: weights, optimizer, best so far, patience used."""
    network.load_state_dict(strip_prefix(tensors, "network."))
    best.resume(saved["best_loss"], saved["best_epoch"], strip_prefix(tensors, "best.") or None, saved["epoch"])
    stop.wait_count = saved["stop_wait"]
    if saved["stop_best"] is not None:
        stop.best_score = torch.tensor(saved["stop_best"])
    if saved["optimizer"] is not None:
        save.optimizer_state = unflatten_optimizer_state(tensors, saved["optimizer"])
    _say(progress, f"  {phase}: {saved['epoch']} epoch(s) restored from the checkpoint")


def fit_head(head: torch.nn.Module, features: dict[str, tuple[np.ndarray, np.ndarray]], config: TrainConfig,
             progress: bool, checkpoints: TrainingCheckpoints | None = None) -> list[dict]:
    """Train the dense softmax head on cached features: seconds, even for thousands of photos. Checkpointed
    once finished (an interrupted head is simply trained again: it takes seconds)."""
    if (rows := _finished_phase(checkpoints, "head", head, progress)) is not None:
        return rows
    phase = config.phases()[0]
    lr, epochs = phase.lr, phase.epochs
    seed_everything(config.seed)
    fit = fit_dense_head(head, features["train"], features["val"], optimizer=config.optimizer, lr=lr,
                         weight_decay=config.weight_decay, label_smoothing=config.label_smoothing, epochs=epochs,
                         patience=phase.patience, batch_size=max(config.batch_size, 64), seed=config.seed,
                         on_epoch=(lambda row: _say(True, epoch_line(row, epochs))) if progress else None)
    _say(progress, f"  best validation loss {fit.best_loss:.4f} at head epoch {fit.best_epoch}")
    if checkpoints:
        state = phase_state(fit.rows, fit.best_loss, fit.best_epoch, fit.epochs_without_improvement, fit.best_loss,
                            fit.stopped_early)
        checkpoints.save_epoch("head", len(fit.rows), head, None, None, state, finished=True)
    return fit.rows


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


def _unfreeze(network: Classifier, config: TrainConfig) -> None:
    if config.strategy == "scratch" or not config.unfreeze:
        network.set_backbone_trainable(True)
        return
    network.set_backbone_trainable(False)
    for block in unfreeze_blocks(network.backbone)[-config.unfreeze:]:
        for parameter in block.parameters():
            parameter.requires_grad = True


def train_on_photos(network: Classifier, parts: dict[str, list[Sample]], classes: list[str], prep,
                    config: TrainConfig, progress: bool, baseline_loss: float | None = None,
                    checkpoints: TrainingCheckpoints | None = None, world_size: int = 1) -> list[dict]:
    """Training through the backbone on augmented photos: fine-tuning a warm network (which must then
    beat `baseline_loss`, its validation loss before), or a network from scratch.

    `batch_size` is the whole run's: with several processes each takes its share of every batch, so the
    same command learns the same way on one device or many."""
    workers = config.workers if config.workers is not None else min(4, max(1, (os.cpu_count() or 1) // world_size))
    batch_size = max(1, round(config.batch_size / world_size))
    train_set = _PhotoDataset(parts["train"], classes, train_transform(prep, config.augmentation))
    val_set = _PhotoDataset(parts["val"], classes, eval_transform(prep))
    common = dict(batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
    # One shuffle of the whole set per epoch, each process taking every world_size-th photo of it: the global
    # batches are then the same on one process or several, and so is what the network learns.
    rank = torch.distributed.get_rank() if world_size > 1 else 0
    sampler = torch.utils.data.DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                                  seed=config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler,
                                               drop_last=len(train_set) > config.batch_size, **common)
    val_loader = torch.utils.data.DataLoader(val_set, **common)
    scratch = config.strategy == "scratch"
    network.freeze_batchnorm_statistics = not scratch  # a new network must learn its own statistics
    _unfreeze(network, config)
    network.backbone.info = replace(network.backbone.info, weights_tag="none")  # weights change from here on
    phase = config.phases()[-1]
    rows = _fit(network, train_loader, val_loader, config, phase.name, phase.lr, phase.epochs, progress, baseline_loss,
                checkpoints)
    network.eval()
    return rows


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
    if config.strategy == "frozen":
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
    reference = None if config.strategy == "frozen" else _reference_backbone(config)
    if config.strategy == "frozen" or reference is not None:
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
            "why": "a network trained from scratch has no ImageNet classifier" if config.strategy == "scratch"
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
    name = config.backbone if config.strategy == "finetune" else DEFAULT_BACKBONE
    if not has_pretrained_weights(name):
        return None
    try:
        return build_backbone(name, pretrained=True)
    except ZoolensError:
        return None


def train(data: str | Path, out: str | Path | None = None, *, config: TrainConfig | None = None,
          split_file: str | Path | None = None, progress: bool = True, resume: bool = False, **options) -> Model:
    """Train a classifier on DATA (class folders, or an already split folder) and save it to `out`.

    Options are TrainConfig fields (backbone, strategy, optimizer, lr, epochs, ...). The returned Model
    carries `.evaluation` (its test-part results) and `.history` (one row per epoch).
    With `out`, every epoch is checkpointed to `<out>.partial/` (removed once the model is saved);
    `resume=True` goes on from there after an interruption. A model already in `out` is replaced, and only
    zoolens's own files in it; `out` is refused, before any work, when it holds something else and no model,
    when it and DATA are inside one another, or while another zoolens writes it (`.<out>.lock` beside it).
    """
    if out is None:
        return _train(data, out, config=config, split_file=split_file, progress=progress, resume=resume, **options)
    _check_output(data, out)
    if not _first_process():  # the others of a multi-process run: the first holds the lock for them all
        return _train(data, out, config=config, split_file=split_file, progress=progress, resume=resume, **options)
    with output_lock(out):
        _check_output(data, out)  # again, now that no other zoolens can be changing it
        try:
            return _train(data, out, config=config, split_file=split_file, progress=progress, resume=resume,
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


def _train(data: str | Path, out: str | Path | None = None, *, config: TrainConfig | None = None,
           split_file: str | Path | None = None, progress: bool = True, resume: bool = False, **options) -> Model:
    started = time.time()
    config = replace(config or TrainConfig(), **options)
    config.validate()
    processes = start_processes(config.accelerator, config.devices, config.num_nodes)
    config = replace(config, devices=processes.devices, num_nodes=processes.num_nodes)
    progress = progress and processes.is_main
    seed_everything(config.seed)
    folder = scan_folder(data)
    manifest = read_manifest(split_file, folder.root) if split_file else split_folder(folder, config.ratios, config.seed)
    counts = manifest.counts()
    _say(progress, f"{folder.root}: {len(folder.classes)} classes, "
         + ", ".join(f"{role} {sum(counts[role].values())}" for role in ("train", "val", "test")))
    for path, reason in folder.skipped:
        _say(progress, f"  skipped {path}: {reason}")

    pretrained = config.strategy != "scratch"
    backbone = build_backbone(config.backbone, pretrained=pretrained)
    prep = backbone.info.preprocessing
    if config.image_size:
        prep = prep.at_size(config.image_size)
    samples = [s for s, _ in manifest.rows]
    if pretrained:
        _say(progress, f"features from {config.backbone} at {prep.input_size} px (cached for next time)")
        found = extract_features_sharded([s.path for s in samples], backbone, prep, processes, progress=progress)
        if found.computed_by_process:
            _say(progress, f"  {found.computed} new photos through the backbone, shared between "
                 f"{processes.world_size} processes ({' + '.join(map(str, found.computed_by_process))})")
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

    checkpoints = _start_checkpoints(out, _run_fingerprint(config, folder.root, manifest), resume, processes,
                                     progress) if out is not None else None

    # Reseeded so that the new head starts from the same weights however much of the above drew random
    # numbers (decoding workers do on a cold feature cache, not on a warm one; one process's share or all).
    seed_everything(config.seed)
    network = Classifier(backbone, len(manifest.classes), dropout=config.dropout)
    features = None
    if pretrained:
        features = _feature_arrays(parts, {s.path: found.features[i] for i, s in enumerate(samples)}, manifest.classes)
        network.set_backbone_trainable(False)
        _say(progress, f"training the head ({config.optimizer}, early stopping on validation loss)")
        history = fit_head(network.head, features, config, progress, checkpoints)
    else:
        history = []
    if config.strategy == "finetune":
        blocks = f"the last {config.unfreeze} blocks" if config.unfreeze else "the whole network"
        augmented = "with augmentation" if config.augmentation else "without augmentation"
        _say(progress, f"fine-tuning {blocks} ({len(parts['train'])} photos per epoch, {augmented})")
        head_best = min(row["val_loss"] for row in history)
        history += train_on_photos(network, parts, manifest.classes, prep, config, progress, head_best, checkpoints,
                                   processes.world_size)
    elif config.strategy == "scratch":
        _say(progress, f"training {config.backbone} from scratch ({len(parts['train'])} photos per epoch)")
        history += train_on_photos(network, parts, manifest.classes, prep, config, progress,
                                   checkpoints=checkpoints, world_size=processes.world_size)
    network.eval()
    if not processes.is_main:  # the first process evaluates and saves; the others' work is done
        return Model(network, manifest.classes, prep, {})

    model = Model(network, manifest.classes, prep, {})
    val_features = _own_features(model, parts, features, config, "val")
    val_labels = _labels(model, parts["val"])
    temperature = calibrate_temperature(_validation_logits(model, val_features), val_labels)
    model.temperature = temperature
    model.open_set = fit_open_set_check(model, parts, features, config, val_features, progress)
    if model.open_set.summary["animal_check"] != "on":
        _say(progress, f"  open-set animal check {model.open_set.summary['animal_check']}")

    evaluation = None
    if parts["test"]:
        evaluation = evaluate_samples(model, parts["test"], f"the test part of the split of {folder.root}", progress=progress)
    elapsed = time.time() - started
    model.meta = {
        "training": {**config.to_dict(), "phases": [asdict(phase) for phase in config.phases()],
                     "seconds": round(elapsed, 1), "epochs_run": len(history), "processes": processes.world_size},
        "data": {
            "root": str(folder.root.resolve()),
            "presplit": folder.presplit,
            "counts": counts,
            "skipped": [{"path": p, "reason": r} for p, r in folder.skipped + problems],
        },
        "calibration": {"temperature": temperature,
                        "fitted_on": f"{len(val_labels)} validation photos" if temperature != 1.0 else "not fitted"},
        "metrics": {k: v for k, v in evaluation.summary().items() if k not in ("skipped",)} if evaluation else {},
    }
    model.history = history
    model.evaluation = evaluation
    if out is not None:
        _save_training_outputs(model, manifest, history, evaluation, Path(out))
        checkpoints.remove()
        _say(progress, f"saved {out} in {elapsed:.0f} s")
    return model


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


def _run_fingerprint(config: TrainConfig, root: Path, manifest: Manifest) -> dict:
    """What a checkpoint must agree on to be resumed: the options that shape training, the data and its split."""
    split = "\n".join(f"{sample.path}\t{role}" for sample, role in manifest.rows)
    return {
        **{k: v for k, v in config.to_dict().items() if k not in WHERE_IT_RUNS},
        "data": str(root.resolve()),
        "split_sha256": hashlib.sha256(split.encode("utf-8", "surrogateescape")).hexdigest(),
    }


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

