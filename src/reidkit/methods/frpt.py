"""Fine-grained Retrieval Prompt Tuning (FRPT, Wang et al., AAAI 2023) and the baselines it is compared with.

A frozen pretrained backbone (weights and BatchNorm statistics: it stays in eval mode) is steered by the
structure perturbation prompt on the input and the category-specific awareness head on its feature map; the
embedding is GeM-pooled (+ BNNeck), the only loss is (label-smoothed) cross-entropy over the training
categories. Variants, same code path and head:
  frpt          SPP + CAH, backbone frozen            no_spp   CAH only, backbone frozen
  linear_probe  head + classifier, backbone frozen    no_cah   SPP only, backbone frozen
  finetune      whole backbone trained with CE (backbone lr x `backbone_lr_scale`)
  official      the reference code's architecture (Pual2013/FRPT), backbone frozen: its prompt reads the
                third stage (ResNet layer3) and is a 1x1 conv + softmax on a 31 x 31 grid
                (`SaliencySamplerPrompt`), its head is SE (r = 1) + 1x1 and 3x3 conv-BN-ReLU
                (`ReferenceAwarenessHead`); the paper-text knobs spp_* (but spp_lr_scale) and cah_reduction
                do not apply. Its recipe also sets last_stride 1 and label_smoothing_style "others".
The prompt trains at lr x `spp_lr_scale`.
Batches: CE only, so plain shuffled or P x K batches both work. Retrieval uses `bn_feat`, L2-normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reidkit.config import ConfigError, ModelConfig
from reidkit.losses import functional as LF
from reidkit.methods.base import BuildInputs, Method, constructor_kwargs, reject_model_freezing
from reidkit.models.embedder import ImageEmbedder
from reidkit.models.freeze import KeepsFrozen
from reidkit.models.heads import EmbeddingHead
from reidkit.models.prompts import (
    STEMS,
    THIRD_STAGES,
    CategoryAwarenessHead,
    ReferenceAwarenessHead,
    SaliencySamplerPrompt,
    StructurePerturbationPrompt,
    first_block_channels,
    first_block_features,
    third_stage_channels,
    third_stage_features,
)
from reidkit.types import Batch, Embedder

log = logging.getLogger(__name__)

VARIANTS = ("frpt", "linear_probe", "finetune", "no_spp", "no_cah", "official")
# uniform: torch's epsilon / C on every class (the label gets 1 - epsilon + epsilon / C); others: the label
# gets 1 - epsilon, each wrong class epsilon / (C - 1) (fast-reid's cross_entropy_loss, FRPT's reference code)
SMOOTHING_STYLES = ("uniform", "others")


@dataclass(frozen=True)
class FRPTConfig:
    """FRPT and its baselines; every field except `name` is a keyword of `FRPT.__init__` (defaults here)."""

    name: str = "frpt"
    variant: str = "frpt"  # frpt | linear_probe | finetune | no_spp | no_cah | official
    label_smoothing: float = 0.1
    label_smoothing_style: str = "uniform"  # uniform | others (SMOOTHING_STYLES)
    cah_reduction: int = 8  # SE reduction r of the awareness head
    spp_hidden: int = 32  # channels of the content-parsing branch
    spp_kernel: int = 7  # taps per side of the content-aware kernel
    spp_receptive_field: float = 0.3  # the kernel spans at least this fraction of the feature width
    spp_sigma: float = 0.25  # std of the Gaussian distance kernel, in [-1, 1] image units
    spp_logit_bound: float = 10.0  # soft bound on the projection logits (max/min of A <= e^(2 bound))
    backbone_lr_scale: float = 0.1  # finetune only: backbone lr = lr * this
    spp_lr_scale: float = 10.0  # prompt lr = lr * this (its signal reaches it through the whole backbone)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(
                f"method.variant: unknown FRPT variant {self.variant!r}; valid: {list(VARIANTS)}"
            )
        if self.label_smoothing_style not in SMOOTHING_STYLES:
            raise ConfigError(
                f"method.label_smoothing_style: {self.label_smoothing_style!r}; "
                f"valid: {list(SMOOTHING_STYLES)}"
            )


class FRPT(KeepsFrozen, Method):
    """FRPT or one of its baselines on `backbone`, a `make_backbone(backbone_name)` module giving
    [B, dim, h, w]; `num_classes` = training categories (labels relabelled to 0..C-1)."""

    def __init__(
        self,
        backbone: nn.Module,
        dim: int,
        num_classes: int,
        *,
        backbone_name: str,
        variant: str = FRPTConfig.variant,
        pooling: str = "gem",
        neck: bool = True,
        label_smoothing: float = FRPTConfig.label_smoothing,
        label_smoothing_style: str = FRPTConfig.label_smoothing_style,
        cah_reduction: int = FRPTConfig.cah_reduction,
        spp_hidden: int = FRPTConfig.spp_hidden,
        spp_kernel: int = FRPTConfig.spp_kernel,
        spp_receptive_field: float = FRPTConfig.spp_receptive_field,
        spp_sigma: float = FRPTConfig.spp_sigma,
        spp_logit_bound: float = FRPTConfig.spp_logit_bound,
        backbone_lr_scale: float = FRPTConfig.backbone_lr_scale,
        spp_lr_scale: float = FRPTConfig.spp_lr_scale,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown FRPT variant {variant!r}; valid: {list(VARIANTS)}")
        if label_smoothing_style not in SMOOTHING_STYLES:
            raise ValueError(
                f"unknown label_smoothing_style {label_smoothing_style!r}; valid: {list(SMOOTHING_STYLES)}"
            )
        if num_classes <= 0:
            raise ValueError(
                f"FRPT needs num_classes > 0 (a classifier over training categories), got {num_classes}"
            )
        self.variant, self.backbone_name, self.dim = variant, backbone_name, dim
        self.eps, self.lr_scales = label_smoothing, {"backbone.": backbone_lr_scale, "spp.": spp_lr_scale}
        self.smoothing_style = label_smoothing_style
        self.backbone = backbone
        self.frozen = variant != "finetune"
        if self.frozen:
            self.keep_frozen(self.backbone)
        self.spp: StructurePerturbationPrompt | SaliencySamplerPrompt | None = None
        # what the prompt reads: (backbone name, backbone, images) -> feature map
        self.prompt_features: Callable[[str, nn.Module, torch.Tensor], torch.Tensor] = first_block_features
        if variant == "official":
            if backbone_name not in THIRD_STAGES:
                raise ValueError(
                    f"FRPT official's prompt needs the third stage's features, but backbone "
                    f"{backbone_name!r} has no third-stage split (valid: {sorted(THIRD_STAGES)})"
                )
            self.prompt_features = third_stage_features
            self.spp = SaliencySamplerPrompt(third_stage_channels(backbone_name, backbone))
        elif variant in ("frpt", "no_cah"):
            if backbone_name not in STEMS:
                raise ValueError(
                    f"FRPT's SPP needs the first block's features, but backbone {backbone_name!r} has no "
                    f"first-block split (valid: {sorted(STEMS)})"
                )
            self.spp = StructurePerturbationPrompt(
                first_block_channels(backbone_name, backbone),
                spp_hidden,
                spp_kernel,
                spp_receptive_field,
                spp_sigma,
                spp_logit_bound,
            )
        self.cah: CategoryAwarenessHead | ReferenceAwarenessHead | None = None
        if variant == "official":
            self.cah = ReferenceAwarenessHead(dim, reduction=1)
        elif variant in ("frpt", "no_spp"):
            self.cah = CategoryAwarenessHead(dim, cah_reduction)
        self.head = EmbeddingHead(dim, num_classes, pooling=pooling, neck=neck)
        trainable, total = self.trainable_parameters()
        log.info(
            "FRPT variant %s on %s: %d trainable of %d parameters (%.1f%%)",
            variant,
            backbone_name,
            trainable,
            total,
            100.0 * trainable / max(total, 1),
        )

    def perturb(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The SPP's output for `images` [B, 3, H, W]:
        {"images" [B, 3, H, W], "attention" [B, h, w], "grid" [B, H, W, 2]}."""
        if self.spp is None:
            raise ValueError(f"FRPT variant {self.variant!r} has no structure perturbation prompt")
        with torch.no_grad():  # the frozen backbone's first block (official: up to its third stage)
            feats = self.prompt_features(self.backbone_name, self.backbone, images)  # [B, C, H/4 | H/16, ..]
        return self.spp(images, feats)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"feat" [B, D], "bn_feat" [B, D], "logits" [B, C]} (+ "attention" [B, h, w] with the SPP)."""
        extra: dict[str, torch.Tensor] = {}
        if self.spp is not None:
            p = self.perturb(images)
            images, extra["attention"] = p["images"], p["attention"]
        if self.frozen and self.spp is None:
            with torch.no_grad():  # nothing before the backbone needs its gradient
                fmap = self.backbone(images)  # [B, D, h, w]
        else:
            fmap = self.backbone(images)  # [B, D, h, w]
        if self.cah is not None:
            fmap = self.cah(fmap)
        return {**self.head(fmap), **extra}

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self(batch.images)
        if self.smoothing_style == "others":
            ce = LF.cross_entropy_smooth_others(out["logits"].float(), batch.pids, epsilon=self.eps)
        else:
            ce = LF.cross_entropy_label_smooth(out["logits"].float(), batch.pids, epsilon=self.eps)
        parts = {"ce": ce.detach()}
        with torch.no_grad():
            parts["acc"] = (out["logits"].argmax(1) == batch.pids).float().mean()
            if "attention" in out:  # 1 = uniform map (identity prompt), lower = more concentrated
                a = out["attention"].flatten(1).float()  # [B, h * w]
                ent = -(a * a.clamp_min(1e-30).log()).sum(1) / torch.log(torch.tensor(float(a.shape[1])))
                parts["attn_entropy"] = ent.mean()
        return {"loss": ce, **parts}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Trainable parameters only (a frozen backbone is absent); the prompt at lr * spp_lr_scale,
        finetune's backbone at lr * backbone_lr_scale; biases without weight decay."""
        groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            scale = next((s for prefix, s in self.lr_scales.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((scale, p.ndim <= 1 and name.endswith("bias")), []).append(p)
        return [
            {"params": ps, "lr": lr * scale, "weight_decay": 0.0 if no_decay else weight_decay}
            for (scale, no_decay), ps in sorted(groups.items())
        ]

    def embedders(self) -> dict[str, Embedder]:
        return {"image": ImageEmbedder(self, self.dim, key="bn_feat")}

    def visual_prompt(self) -> Any:
        """The structure perturbation prompt (`perturb`) when this variant has one."""
        return self.perturb if self.spp is not None else None


def build(config: FRPTConfig, model: ModelConfig, inputs: BuildInputs) -> FRPT:
    """FRPT (or a baseline, per `config.variant`) around the `model:` section's backbone."""
    from reidkit.models.backbones import make_backbone

    reject_model_freezing(model, "frpt", "keeps its backbone frozen (all variants but finetune)")
    body, dim = make_backbone(model.backbone, inputs.weights, last_stride=model.last_stride)
    return FRPT(
        body,
        dim,
        inputs.num_classes,
        backbone_name=model.backbone,
        pooling=model.pooling,
        neck=model.neck,
        **constructor_kwargs(FRPT, config),
    )
