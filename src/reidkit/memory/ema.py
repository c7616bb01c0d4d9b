"""Momentum (EMA) copies of modules: MoCo's key encoders, `θk ← m·θk + (1−m)·θq`."""

from __future__ import annotations

import copy

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy with every parameter frozen (requires_grad=False): the key encoder of `module`."""
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


@torch.no_grad()
def ema_update(src: nn.Module, dst: nn.Module, m: float) -> None:
    """dst ← m·dst + (1−m)·src for parameters `src` trains; frozen parameters and buffers are copied.

    Buffers (BatchNorm running statistics, counters) are copied rather than averaged. Both modules must
    have the same parameter and buffer names and shapes.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"ema_update: momentum must lie in [0, 1], got {m}")
    sp, dp = dict(src.named_parameters()), dict(dst.named_parameters())
    sb, db = dict(src.named_buffers()), dict(dst.named_buffers())
    if sp.keys() != dp.keys() or sb.keys() != db.keys():
        diff = sorted((sp.keys() ^ dp.keys()) | (sb.keys() ^ db.keys()))
        raise ValueError(f"ema_update: source and target modules differ in tensors {diff[:5]}")
    for name, p in sp.items():
        q = dp[name]
        if q.shape != p.shape:
            raise ValueError(
                f"ema_update: {name} has shape {tuple(p.shape)} in source, {tuple(q.shape)} in target"
            )
        if p.requires_grad:
            q.mul_(m).add_(p.detach().to(q.dtype), alpha=1.0 - m)  # [*]
        else:
            q.copy_(p)
    for name, b in sb.items():
        db[name].copy_(b)
