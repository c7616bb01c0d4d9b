"""Chunked pairwise distances in torch (cosine, euclidean, squared euclidean).

Computed block by block on the device of the inputs, so a large gallery never needs more than one
[chunk, N] temporary beside the output, and GPU tensors stay on the GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

METRICS = ("cosine", "euclidean", "sqeuclidean")


def as_float_tensor(x: np.ndarray | torch.Tensor, name: str = "features") -> torch.Tensor:
    """A 2-D floating tensor view of `x` (numpy arrays are wrapped without copying when possible)."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [N, D], got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    return t


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}; valid: {', '.join(METRICS)}")


def distance_blocks(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    metric: str = "cosine",
    *,
    chunk_size: int = 2048,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield `(row_start, block)` with block = distances from x[row_start:row_start+c] to all of y.

    Blocks are fresh tensors [c, N] on the device of the inputs (the caller may modify them in place).
    cosine = 1 - cos(x, y); euclidean = ||x - y||; sqeuclidean = ||x - y||^2 (clamped at 0).
    """
    _check_metric(metric)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    xt = as_float_tensor(x, "x")
    yt = as_float_tensor(y, "y")
    if xt.shape[1] != yt.shape[1]:
        raise ValueError(f"feature dimensions differ: x has {xt.shape[1]}, y has {yt.shape[1]}")
    if xt.device != yt.device:
        raise ValueError(f"x is on {xt.device} but y is on {yt.device}; put both on one device")
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(dtype), yt.to(dtype)
    if metric == "cosine":
        xt = F.normalize(xt, dim=1)
        yt = F.normalize(yt, dim=1)
        yt_t = yt.T
        for s in range(0, xt.shape[0], chunk_size):
            sim = xt[s : s + chunk_size] @ yt_t  # [c, N]
            yield s, sim.neg_().add_(1.0)
        return
    sq_y = (yt * yt).sum(1)  # [N]
    yt_t = yt.T
    for s in range(0, xt.shape[0], chunk_size):
        xc = xt[s : s + chunk_size]  # [c, D]
        # ||x||^2 + ||y||^2 - 2 x.y, in one addmm plus one broadcast add.
        d = torch.addmm(sq_y.unsqueeze(0), xc, yt_t, alpha=-2.0)  # [c, N]
        d.add_((xc * xc).sum(1, keepdim=True)).clamp_min_(0.0)
        if metric == "euclidean":
            d.sqrt_()
        yield s, d


def pairwise_distance(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    metric: str = "cosine",
    *,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Distance matrix [M, N] between the rows of x [M, D] and y [N, D], filled chunk by chunk.

    Runs on the device of the inputs (GPU tensors in, GPU tensor out); numpy inputs give a CPU tensor.
    """
    xt = as_float_tensor(x, "x")
    yt = as_float_tensor(y, "y")
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    out = torch.empty((xt.shape[0], yt.shape[0]), dtype=dtype, device=xt.device)  # [M, N]
    for s, block in distance_blocks(xt, yt, metric, chunk_size=chunk_size):
        out[s : s + block.shape[0]] = block
    return out


def paired_distance(
    x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, metric: str = "cosine"
) -> torch.Tensor:
    """Distance between x[i] and y[i] for every row i: [N] (same definitions as pairwise_distance)."""
    _check_metric(metric)
    xt = as_float_tensor(x, "x")
    yt = as_float_tensor(y, "y")
    if xt.shape != yt.shape:
        raise ValueError(f"paired_distance needs equal shapes, got {tuple(xt.shape)} and {tuple(yt.shape)}")
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(dtype), yt.to(dtype)
    if metric == "cosine":
        return 1.0 - (F.normalize(xt, dim=1) * F.normalize(yt, dim=1)).sum(1)  # [N]
    d = ((xt * xt).sum(1) + (yt * yt).sum(1) - 2.0 * (xt * yt).sum(1)).clamp_min(0.0)  # [N]
    return d.sqrt() if metric == "euclidean" else d
