"""The Method interface: one small class per training method (see DESIGN.md)."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reidkit.config import ModelConfig
from reidkit.types import Batch, Embedder, EpochContext, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildInputs:
    """What a method's `build` needs besides its own config and the model section."""

    num_classes: int  # training identities / categories (0 for unsupervised methods)
    weights: str | None = None  # start weights (model.weights); None when a checkpoint will be loaded
    steps_per_epoch: int = 0  # optim.iters_per_epoch (0: one sampler pass)
    records: Sequence[Record] = ()  # the training records (TextReID builds its vocabulary from them)
    run_dir: Path | None = None  # where a method keeps files beside its checkpoints (TextReID: vocab.json)
    state: Mapping[str, torch.Tensor] | None = None  # the checkpoint weights about to be loaded, if any
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0


def constructor_kwargs(cls: Callable[..., Any], config: Any) -> dict[str, Any]:
    """The config fields that name a keyword of `cls` (the one way a config becomes constructor arguments;
    the constructors take their defaults from the config class, so defaults live in one place)."""
    params = inspect.signature(cls).parameters
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name in params}


def reject_model_freezing(model: ModelConfig, method: str, how: str) -> None:
    """model.freeze_bn / model.freeze_stages are the ReIDModel's knobs; other methods freeze their own way."""
    if model.freeze_bn or model.freeze_stages:
        raise ValueError(
            f"model.freeze_bn and model.freeze_stages apply to ctl and cluster_contrast; {method} {how}"
        )


class Method(nn.Module):
    """A training method: losses in `training_step`, state updates after it, embedders for inference."""

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Return {"loss": scalar, <part>: scalar, ...} for one batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_step")

    def on_epoch_start(self, ctx: EpochContext) -> Sequence[Record] | None:
        """Unsupervised methods re-cluster here and return relabelled train records; others return None."""
        return None

    def embedders(self) -> dict[str, Embedder]:
        """Inference entry points by modality ("image", "text")."""
        raise NotImplementedError(f"{type(self).__name__} must implement embedders")

    def tokenizer(self) -> Callable[[str], torch.Tensor] | None:
        """Caption -> token ids for the text embedder (methods with a text stream), else None."""
        return None

    def visual_prompt(self) -> Callable[[torch.Tensor], dict[str, torch.Tensor]] | None:
        """images -> {"images", "attention", ...}: a learned input prompt (FRPT's SPP), else None."""
        return None

    def epoch_stats(self) -> dict[str, float]:
        """Extra numbers for the epoch's metrics row (e.g. queue fill, clustering quality)."""
        return {}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Trainable parameters for the main optimiser (frozen parts absent); biases get no weight decay."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad or name in self.separately_optimised():
                continue
            (no_decay if p.ndim <= 1 and name.endswith("bias") else decay).append(p)
        groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
        return groups

    def separately_optimised(self) -> set[str]:
        """Names of parameters that `extra_optimizers` own (kept out of the main optimiser)."""
        return set()

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers of their own (e.g. the center-loss centers); stepped by the loop with the main one."""
        return []

    def before_optimizer_step(self) -> None:
        """Hook after backward (gradients unscaled) and before the optimiser steps."""

    def after_optimizer_step(self, batch: Batch, out: dict[str, torch.Tensor]) -> None:
        """Hook after the optimiser stepped: momentum encoders, memories and queues update here."""

    def trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total
