"""The trainable network: a backbone's pooled (GAP) features, dropout, and a dense softmax layer."""

from __future__ import annotations

import torch
from torch import nn

from zoolens.models.backbones import Backbone


def build_head(feature_dim: int, num_classes: int, dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))


class Classifier(nn.Module):
    def __init__(self, backbone: Backbone, num_classes: int, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.head = build_head(backbone.feature_dim, num_classes, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def set_backbone_trainable(self, trainable: bool) -> None:
        for parameter in self.backbone.parameters():
            parameter.requires_grad = trainable
