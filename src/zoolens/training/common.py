"""What training shares, without importing Lightning or PyTorch (a warm frozen run needs neither)."""

from __future__ import annotations

import logging
import os
import random
import sys
import warnings

import numpy as np

from zoolens.training.config import OPTIMIZERS


def make_optimizer(name: str, parameters, lr: float, weight_decay: float):
    """A PyTorch optimizer (models/dense_head has the same three for the head on cached features)."""
    import torch

    if name == "adam":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def seed_everything(seed: int) -> None:
    """Lightning's `seed_everything(seed, workers=True)`, down to the environment variables through which its
    data-loading workers and DDP processes take their seeds, without importing Lightning (2.5 s here). PyTorch's
    generator is seeded when PyTorch is in use (imported); a run that trains only the head never imports it."""
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def quiet_lightning() -> None:
    """Lightning's notices, which are about its own choices and not the user's run, kept out of the output."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
