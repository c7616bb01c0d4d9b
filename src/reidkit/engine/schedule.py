"""Learning-rate schedules as pure functions of the epoch (warm-up + multistep / cosine)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def lr_factor(
    epoch: int,
    *,
    epochs: int,
    warmup_epochs: int = 0,
    warmup_factor: float = 0.01,
    schedule: str = "multistep",
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base lr at 0-based `epoch`: linear warm-up from `warmup_factor` to 1, then decay."""
    if warmup_epochs > 0 and epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        return warmup_factor * (1 - alpha) + alpha
    if schedule == "multistep":
        return gamma ** sum(epoch >= m for m in milestones)
    if schedule == "cosine":
        span = max(epochs - warmup_epochs, 1)
        t = min(max(epoch - warmup_epochs, 0) / span, 1.0)
        return 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; valid: multistep, cosine, constant")


def build_scheduler(optimizer: torch.optim.Optimizer, **kwargs) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per epoch with `lr_factor(epoch, **kwargs)`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(e, **kwargs))


def build_optimizer(
    param_groups: list[dict],
    name: str = "adam",
    lr: float = 3.5e-4,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    nesterov: bool = True,
) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over the method's parameter groups (frozen parts are absent from the groups)."""
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            param_groups, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov
        )
    raise ValueError(f"unknown optimizer {name!r}; valid: adam, adamw, sgd")
