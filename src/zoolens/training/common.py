"""What training shares, without importing Lightning (a warm frozen run never needs it)."""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import torch

from zoolens.training.config import OPTIMIZERS


def make_optimizer(name: str, parameters, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def seed_everything(seed: int) -> None:
    """Lightning's `seed_everything(seed, workers=True)`, down to the environment variables through which its
    data-loading workers and DDP processes take their seeds, without importing Lightning (2.5 s here)."""
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def quiet_lightning() -> None:
    """Lightning's notices, which are about its own choices and not the user's run, kept out of the output."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
