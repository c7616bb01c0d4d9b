"""ReIDModel: backbone feature map -> pooling -> feature -> BNNeck -> classifier, one dict out."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from reidkit.config import ModelConfig
from reidkit.models.backbones import frozen_stage_modules, make_backbone
from reidkit.models.freeze import KeepsFrozen, batchnorm_layers
from reidkit.models.heads import EmbeddingHead

log = logging.getLogger(__name__)


class ReIDModel(KeepsFrozen):
    """`forward(images)` returns {"feat", "bn_feat", "logits" (when classes > 0)} in train and eval.

    `freeze_bn`: the backbone's BatchNorm layers stay in eval mode (running statistics frozen, affine
    weights trainable) whatever `train()` is called with; the head's BNNeck trains as usual.
    `frozen`: backbone modules frozen outright (no gradients, always in eval mode); with the first stages
    frozen, backward stops where the trainable part begins.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: EmbeddingHead,
        dim: int,
        freeze_bn: bool = False,
        frozen: list[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.dim, self.freeze_bn = backbone, head, dim, freeze_bn
        if freeze_bn:
            self.keep_frozen(*batchnorm_layers(backbone), train_weights=True)
        self.keep_frozen(*(frozen or []))

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
    freeze_bn: bool = False,
    freeze_stages: int = 0,
) -> ReIDModel:
    """Backbone by name (see `reidkit.models.backbones.BACKBONES`) plus the BNNeck embedding head;
    `freeze_stages=N` freezes the backbone's first N stages outright."""
    body, dim = make_backbone(backbone, weights, last_stride=last_stride)
    head = EmbeddingHead(dim, num_classes, pooling=pooling, neck=neck)
    frozen = frozen_stage_modules(backbone, body, freeze_stages)
    return ReIDModel(body, head, dim, freeze_bn=freeze_bn, frozen=frozen).train()


def reid_model_from(model: ModelConfig, num_classes: int, weights: str | Path | None) -> ReIDModel:
    """The ReIDModel the `model:` section describes, starting from `weights` (CTL and Cluster-Contrast)."""
    if model.freeze_bn and model.weights is None:
        log.warning("model.freeze_bn with model.weights=null keeps freshly initialised BN statistics (0 / 1)")
    return build_reid_model(
        model.backbone,
        num_classes,
        weights=weights,
        last_stride=model.last_stride,
        pooling=model.pooling,
        neck=model.neck,
        freeze_bn=model.freeze_bn,
        freeze_stages=model.freeze_stages,
    )
