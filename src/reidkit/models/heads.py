"""ReID heads: pooling (avg / max / GeM), BNNeck and a bias-free classifier, as in the BoT strong baseline."""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("avg", "max", "gem")


class GeM(nn.Module):
    """Generalized-mean pooling with a learnable exponent p: (mean(clamp(x, eps)^p))^(1/p); p=1 is average
    pooling, p -> inf approaches max pooling. [B, C, h, w] -> [B, C]."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)  # [B, C]


class BNNeck(nn.BatchNorm1d):
    """BatchNorm1d whose bias is frozen at 0 (requires_grad=False), weight initialised to 1 (BoT's BNNeck).

    Train mode normalises with batch statistics, eval mode with running statistics. [B, C] -> [B, C].
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        nn.init.ones_(self.weight)  # BoT's weights_init_kaiming for BN layers: weight 1, bias 0
        nn.init.zeros_(self.bias)
        self.bias.requires_grad_(False)


def make_pooling(name: str) -> nn.Module:
    """Global pooling by name ("avg", "max", "gem"): [B, C, h, w] -> [B, C]."""
    if name == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if name == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
    if name == "gem":
        return GeM()
    raise ValueError(f"unknown pooling {name!r}; valid: {list(POOLINGS)}")


class EmbeddingHead(nn.Module):
    """Pool -> `feat`; BNNeck -> `bn_feat`; bias-free Linear on `bn_feat` -> `logits` (if num_classes > 0).

    forward([B, C, h, w]) returns {"feat": [B, C], "bn_feat": [B, C], "logits": [B, num_classes]}, the same
    dict in train and eval mode; with neck=False, `bn_feat` is `feat` and the classifier reads `feat`.
    """

    def __init__(self, in_dim: int, num_classes: int, pooling: str = "avg", neck: bool = True) -> None:
        super().__init__()
        if in_dim <= 0 or num_classes < 0:
            raise ValueError(
                f"EmbeddingHead needs in_dim > 0 and num_classes >= 0, got {in_dim}, {num_classes}"
            )
        self.in_dim, self.num_classes = in_dim, num_classes
        self.pool = make_pooling(pooling)
        self.neck = BNNeck(in_dim) if neck else None
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.classifier = nn.Linear(in_dim, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, std=0.001)  # BoT's weights_init_classifier

    def forward(self, fmap: torch.Tensor) -> dict[str, torch.Tensor]:
        if fmap.dim() != 4 or fmap.shape[1] != self.in_dim:
            raise ValueError(
                f"EmbeddingHead expects a feature map [B, {self.in_dim}, h, w], got {tuple(fmap.shape)}"
            )
        feat = self.pool(fmap)  # [B, C]
        bn_feat = feat if self.neck is None else self.neck(feat)  # [B, C]
        out = {"feat": feat, "bn_feat": bn_feat}
        if self.classifier is not None:
            out["logits"] = self.classifier(bn_feat)  # [B, num_classes]
        return out
