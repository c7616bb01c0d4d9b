"""Thin nn.Modules over `losses.functional`: they hold hyper-parameters (and CenterLoss its centers)."""

from __future__ import annotations

import torch
from torch import nn

from reidkit.losses import functional as LF


class TripletLoss(nn.Module):
    """Batch-hard triplet loss on Euclidean distances (see `functional.batch_hard_triplet`)."""

    def __init__(self, margin: float = 0.5, soft_margin: bool = False) -> None:
        super().__init__()
        self.margin, self.soft_margin = margin, soft_margin

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return LF.batch_hard_triplet(feats, labels, self.margin, self.soft_margin)


class CentroidTripletLoss(nn.Module):
    """Centroid triplet loss, the reference form (see `functional.centroid_triplet`)."""

    def __init__(self, margin: float = 0.5, soft_margin: bool = False) -> None:
        super().__init__()
        self.margin, self.soft_margin = margin, soft_margin

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return LF.centroid_triplet(feats, labels, self.margin, self.soft_margin)


class CrossEntropyLabelSmooth(nn.Module):
    """Label-smoothed cross-entropy (see `functional.cross_entropy_label_smooth`)."""

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return LF.cross_entropy_label_smooth(logits, labels, self.epsilon)


class CenterLoss(nn.Module):
    """Center loss (1/B) sum_i ||f_i - c_{y_i}||^2 owning its centers [num_classes, feat_dim] ~ N(0, 1), as
    in BoT. BoT optimises the centers with their own SGD (lr 0.5) and rescales their gradients by
    1/loss_weight before that step, so the center update does not depend on the loss weight."""

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        if num_classes <= 0 or feat_dim <= 0:
            raise ValueError(
                f"CenterLoss needs num_classes > 0 and feat_dim > 0, got {num_classes}, {feat_dim}"
            )
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))  # [C, D]

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return LF.center_loss(feats, labels, self.centers)
