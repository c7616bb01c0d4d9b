"""FeatureQueue: a fixed-size ring buffer of (feature, id) pairs for MoCo-style negatives.

Features and ids live in buffers, so they move with `.to(device)` and are saved in `state_dict`
(checkpoints resume with the same negatives). Entries are written at `ptr` and wrap around; a batch larger
than the queue keeps only its last `size` rows. Size 0 is allowed: the queue stays empty (in-batch only).
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureQueue(nn.Module):
    """Ring buffer of `size` features [size, dim] with their integer ids [size] (-1 = never written)."""

    feats: torch.Tensor
    ids: torch.Tensor
    ptr: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 0 or dim <= 0:
            raise ValueError(f"FeatureQueue needs size >= 0 and dim > 0, got size={size}, dim={dim}")
        self.size, self.dim = size, dim
        self.register_buffer("feats", torch.zeros(size, dim))  # [S, D]
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long))  # [S]
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # entries written in total

    def __len__(self) -> int:
        """Valid entries: min(entries written, size)."""
        return min(int(self.count), self.size)

    @torch.no_grad()
    def enqueue(self, feats: torch.Tensor, ids: torch.Tensor) -> None:
        """Write a batch (feats [B, D], ids [B]) at the pointer, wrapping around; oldest entries go first."""
        if feats.dim() != 2 or feats.shape[1] != self.dim or ids.shape != (feats.shape[0],):
            raise ValueError(
                f"FeatureQueue.enqueue: expected feats [B, {self.dim}] and ids [B], got "
                f"{tuple(feats.shape)} and {tuple(ids.shape)}"
            )
        n = feats.shape[0]
        if self.size == 0 or n == 0:
            self.count += n
            return
        feats, ids = feats.detach()[-self.size :], ids.detach()[-self.size :]  # a batch > size keeps its tail
        skipped = n - feats.shape[0]
        start = (int(self.ptr) + skipped) % self.size
        slots = (start + torch.arange(feats.shape[0], device=self.feats.device)) % self.size  # [b]
        self.feats[slots] = feats.to(self.feats.dtype)
        self.ids[slots] = ids.to(self.ids.dtype)
        self.ptr.fill_((start + feats.shape[0]) % self.size)
        self.count += n

    def get(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached copies of the valid entries: (feats [n, D], ids [n]), in slot order."""
        n = len(self)
        return self.feats[:n].detach().clone(), self.ids[:n].detach().clone()

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
