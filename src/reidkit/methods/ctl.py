"""Supervised ReID: the BNNeck baseline plus the Centroid Triplet Loss (Wieczorek et al., ICONIP 2021).

Losses (weights from CTLConfig, all 1 by default): label-smoothed CE on the classifier, batch-hard triplet on
`feat`, center loss (its centers optimised by their own SGD) and, with `centroid_triplet`, the centroid
triplet loss on `feat` (`ctl_form`: the reference code's per-slot form, or the simpler per-image form).
Retrieval uses `bn_feat`, L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reidkit.config import ConfigError, ModelConfig
from reidkit.losses import functional as LF
from reidkit.losses.modules import CenterLoss
from reidkit.methods.base import BuildInputs, Method, constructor_kwargs
from reidkit.models.embedder import ImageEmbedder
from reidkit.models.model import ReIDModel, reid_model_from
from reidkit.types import Batch, Embedder

CTL_FORMS = {"reference": LF.centroid_triplet, "per_image": LF.centroid_triplet_per_image}


@dataclass(frozen=True)
class CTLConfig:
    """Supervised BNNeck baseline (+ Centroid Triplet Loss)."""

    name: str = "ctl"
    centroid_triplet: bool = True
    # reference: the centroids-reid training code (per image slot, centroids as anchors, images as negatives);
    # per_image: reidkit's first form (image anchors vs leave-one-out and full centroids only)
    ctl_form: str = "reference"
    margin: float = 0.5
    label_smoothing: float = 0.1
    center_weight: float = 5e-4
    center_lr: float = 0.5
    triplet_weight: float = 1.0
    ce_weight: float = 1.0
    ctl_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.ctl_form not in CTL_FORMS:
            raise ConfigError(f"method.ctl_form: unknown form {self.ctl_form!r}; valid: {list(CTL_FORMS)}")


class CTL(Method):
    """BNNeck baseline (+ CTL). `num_classes` = training identities (pids are relabelled to 0..C-1)."""

    def __init__(
        self,
        model: ReIDModel,
        num_classes: int,
        *,
        centroid_triplet: bool = CTLConfig.centroid_triplet,
        ctl_form: str = CTLConfig.ctl_form,
        margin: float = CTLConfig.margin,
        label_smoothing: float = CTLConfig.label_smoothing,
        center_weight: float = CTLConfig.center_weight,
        center_lr: float = CTLConfig.center_lr,
        triplet_weight: float = CTLConfig.triplet_weight,
        ce_weight: float = CTLConfig.ce_weight,
        ctl_weight: float = CTLConfig.ctl_weight,
    ) -> None:
        super().__init__()
        if ctl_form not in CTL_FORMS:
            raise ValueError(f"CTL: unknown ctl_form {ctl_form!r}; valid: {list(CTL_FORMS)}")
        self.model = model
        self.center = CenterLoss(num_classes, model.dim)
        self.use_ctl, self.margin, self.eps = centroid_triplet, margin, label_smoothing
        self.ctl_fn = CTL_FORMS[ctl_form]
        self.center_weight, self.center_lr = center_weight, center_lr
        self.w_tri, self.w_ce, self.w_ctl = triplet_weight, ce_weight, ctl_weight
        self._center_opt: torch.optim.Optimizer | None = None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.model(batch.images)
        feat, pids = out["feat"].float(), batch.pids  # [B, D], [B]
        ce = LF.cross_entropy_label_smooth(out["logits"].float(), pids, epsilon=self.eps)
        tri = LF.batch_hard_triplet(feat, pids, margin=self.margin)
        center = self.center(feat, pids)
        loss = self.w_ce * ce + self.w_tri * tri + self.center_weight * center
        parts = {"ce": ce.detach(), "triplet": tri.detach(), "center": center.detach()}
        if self.use_ctl:
            ctl = self.ctl_fn(feat, pids, margin=self.margin)
            loss = loss + self.w_ctl * ctl
            parts["centroid_triplet"] = ctl.detach()
        with torch.no_grad():
            parts["acc"] = (out["logits"].argmax(1) == pids).float().mean()
        return {"loss": loss, **parts}

    def separately_optimised(self) -> set[str]:
        return {f"center.{n}" for n, _ in self.center.named_parameters()}

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        if self._center_opt is None:
            self._center_opt = torch.optim.SGD(self.center.parameters(), lr=self.center_lr)
        return [self._center_opt]

    def before_optimizer_step(self) -> None:
        # The centers' gradient is taken on the unweighted center loss (as in the strong-baseline recipe).
        for p in self.center.parameters():
            if p.grad is not None and self.center_weight > 0:
                p.grad.mul_(1.0 / self.center_weight)

    def embedders(self) -> dict[str, Embedder]:
        return {"image": ImageEmbedder(self.model, self.model.dim, key="bn_feat")}


def build(config: CTLConfig, model: ModelConfig, inputs: BuildInputs) -> CTL:
    """CTL around a ReIDModel with a classifier over the training identities."""
    body = reid_model_from(model, inputs.num_classes, inputs.weights)
    return CTL(body, inputs.num_classes, **constructor_kwargs(CTL, config))
