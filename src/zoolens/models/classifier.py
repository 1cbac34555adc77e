"""The trainable network: a backbone's pooled (GAP) features, dropout, and a dense softmax layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zoolens.models.backbones import Backbone


class Dropout(nn.Dropout):
    """nn.Dropout with its mask drawn by `torch.rand` instead of `bernoulli_`, which on CPU takes 1 ms for a
    64 × 1280 batch against 0.35 ms: the larger part of a head training step (measured here)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return inputs
        keep = 1.0 - self.p
        return inputs * (torch.rand_like(inputs) < keep).to(inputs.dtype) * (1.0 / keep)


def build_head(feature_dim: int, num_classes: int, dropout: float = 0.5) -> nn.Sequential:
    return nn.Sequential(Dropout(dropout), nn.Linear(feature_dim, num_classes))


def set_head(network: Classifier, weight, bias) -> None:
    """The dense layer's weights from NumPy arrays (a head trained by models/dense_head, or read from a file)."""
    network.head.load_state_dict({"1.weight": torch.from_numpy(np.array(weight, np.float32)),
                                  "1.bias": torch.from_numpy(np.array(bias, np.float32))})


class Classifier(nn.Module):
    def __init__(self, backbone: Backbone, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.head = build_head(backbone.feature_dim, num_classes, dropout)
        self.freeze_batchnorm_statistics = True

    def train(self, mode: bool = True) -> Classifier:
        """Batch-norm layers of the backbone keep their ImageNet statistics while fine-tuning (their scale
        and shift still learn): small, augmented batches would otherwise drag the running statistics
        away from what the pretrained weights expect (Keras' transfer-learning guide does the same)."""
        super().train(mode)
        if mode and self.freeze_batchnorm_statistics:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def set_backbone_trainable(self, trainable: bool) -> None:
        for parameter in self.backbone.parameters():
            parameter.requires_grad = trainable
