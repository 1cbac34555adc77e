"""An ensemble of pretrained backbones as one PyTorch backbone: every member's pooled features side by side.

What `runtime.extractor.CombinedExtractor` computes with ONNX Runtime member by member, as one module, for what needs
the network itself: Grad-CAM of a member (its feature map, in the whole ensemble's answer), `zoolens export` (one ONNX
file) and the report's parameter count. Its members see one photo crop (the ensemble's one input size); each gets the normalisation it was
trained with from the images normalised as the first member's, in the graph.
"""

from __future__ import annotations

import torch
from torch import nn

from zoolens.data.transforms import Preprocessing
from zoolens.models.available import BackboneInfo
from zoolens.models.backbones import Backbone
from zoolens.models.member_scaling import MEMBER_LENGTH


class EnsembleBackbone(nn.Module):
    """Members (`Backbone`s) side by side: images normalised as `preprocessings[0]` says in; out, the features as a
    model's head reads them (`models.member_scaling`): every member's scaled to MEMBER_LENGTH, concatenated
    in member order. `info` names them all ("mobilenet_v2+efficientnet_lite2")."""

    def __init__(self, members: list[Backbone], preprocessings: list[Preprocessing], info: BackboneInfo):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.info = info
        self.feature_dim = sum(member.feature_dim for member in members)
        first = preprocessings[0]
        # x_member = (x_first * std_first + mean_first - mean_member) / std_member: not weights, so not saved.
        for i, prep in enumerate(preprocessings):
            scale = torch.tensor(first.std) / torch.tensor(prep.std)
            offset = (torch.tensor(first.mean) - torch.tensor(prep.mean)) / torch.tensor(prep.std)
            self.register_buffer(f"scale{i}", scale.view(1, 3, 1, 1), persistent=False)
            self.register_buffer(f"offset{i}", offset.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = [member(images * getattr(self, f"scale{i}") + getattr(self, f"offset{i}"))
                    for i, member in enumerate(self.members)]
        return torch.cat([nn.functional.normalize(one, dim=1, eps=1e-12) * MEMBER_LENGTH for one in features], dim=1)

