"""The Method interface: one small class per training method (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reidkit.types import Batch, Embedder, Record


class Method(nn.Module):
    """A training method: losses in `training_step`, state updates after it, embedders for inference."""

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Return {"loss": scalar, <part>: scalar, ...} for one batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_step")

    def on_epoch_start(self, ctx: Any) -> Sequence[Record] | None:
        """Unsupervised methods re-cluster here and return relabelled train records; others return None."""
        return None

    def embedders(self) -> dict[str, Embedder]:
        """Inference entry points by modality ("image", "text")."""
        raise NotImplementedError(f"{type(self).__name__} must implement embedders")

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
