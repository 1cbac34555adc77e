"""The photos a phase through the backbone trains on: decoded, augmented, dealt out between the run's processes."""

from __future__ import annotations

import os
from dataclasses import replace

import torch

from zoolens.data.folders import Sample
from zoolens.data.transforms import Preprocessing, decode_for_network, network_transform, train_transform
from zoolens.models.backbones import unfreeze_blocks
from zoolens.models.classifier import Classifier
from zoolens.runtime.distributed import Processes
from zoolens.training.config import Phase, TrainConfig
from zoolens.training.loop import PhotoBatches


class _PhotoDataset(torch.utils.data.Dataset):
    """Photos decoded as every answer decodes them (`transforms.decode_for_network`), then `transform`ed."""

    def __init__(self, samples: list[Sample], classes: list[str], prep: Preprocessing, transform):
        self.samples = samples
        self.index = {name: i for i, name in enumerate(classes)}
        self.prep = prep
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        return self.transform(decode_for_network(sample.path, self.prep)), self.index[sample.label]


def prepare_network(network: Classifier, phase: Phase) -> None:
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
    train_set = _PhotoDataset(parts["train"], classes, prep, train_transform(prep, config.augmentation))
    # Every world_size-th validation photo: the processes' sums add up to the loss over each photo exactly once.
    val_set = torch.utils.data.Subset(_PhotoDataset(parts["val"], classes, prep, network_transform(prep)),
                                      range(rank, len(parts["val"]), world_size))
    common = dict(batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
    # One shuffle of the whole set per epoch, each process taking every world_size-th photo of it: the global
    # batches are then the same on one process or several, and so is what the network learns.
    sampler = torch.utils.data.DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                                  seed=config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler,
                                               drop_last=len(train_set) > config.batch_size, **common)
    return PhotoBatches(train_loader, torch.utils.data.DataLoader(val_set, **common), sampler)
