"""ReIDModel: backbone feature map -> pooling -> feature -> BNNeck -> classifier, one dict out."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from reidkit.models.backbones import make_backbone
from reidkit.models.heads import EmbeddingHead


class ReIDModel(nn.Module):
    """`forward(images)` returns {"feat", "bn_feat", "logits" (when classes > 0)} in train and eval."""

    def __init__(self, backbone: nn.Module, head: EmbeddingHead, dim: int) -> None:
        super().__init__()
        self.backbone, self.head, self.dim = backbone, head, dim

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.backbone(images))  # [B, 3, H, W] -> {feat: [B, D], ...}


def build_reid_model(
    backbone: str,
    num_classes: int,
    *,
    weights: str | Path | None = None,
    last_stride: int = 1,
    pooling: str = "avg",
    neck: bool = True,
) -> ReIDModel:
    """Backbone by name (see `reidkit.models.backbones.BACKBONES`) plus the BNNeck embedding head."""
    body, dim = make_backbone(backbone, weights, last_stride=last_stride)
    return ReIDModel(body, EmbeddingHead(dim, num_classes, pooling=pooling, neck=neck), dim)
