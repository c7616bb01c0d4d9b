"""Implicit Sample Extension (ISE, Zhang et al., CVPR 2022): support samples made by progressive linear
interpolation from each feature towards its nearest other clusters, and the schedule of their degree.

Paper and reference code: s = normalize(f + lambda_t * delta), delta = (c_nearest - c_own) / 2, with
lambda_t = 0.5 * lambda0 * log((e - 1) * t / T + 1) growing from 0 to lambda0 / 2 over training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCHEDULES = ("log", "linear")


def lambda_schedule(progress: float, lambda0: float = 1.0, kind: str = "log") -> float:
    """Degree lambda_t at training progress t/T in [0, 1]: 0 at the start, lambda0 / 2 at the end.

    "log": 0.5 * lambda0 * log((e - 1) * p + 1) (the reference code); "linear": 0.5 * lambda0 * p.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"lambda_schedule: unknown kind {kind!r}; valid: {list(SCHEDULES)}")
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"lambda_schedule: progress must lie in [0, 1], got {progress}")
    if kind == "log":
        return 0.5 * lambda0 * math.log((math.e - 1.0) * progress + 1.0)
    return 0.5 * lambda0 * progress


def support_samples(
    feats: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor, lam: float, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Support samples of every feature towards its k most similar centroids other than its own cluster.

    Returns (supports [B * k', D], support_labels [B * k']) with k' = min(k, C - 1), sample-major (the k'
    supports of feature i are rows i*k' .. i*k'+k'-1; they keep label i). Each support is
    normalize(f + lam * (c_nearest - c_own) / 2). Gradients flow to `feats`, not to `centroids`; neighbours
    are chosen by cosine similarity of the detached features. Fewer than 2 clusters: no supports.
    """
    if feats.dim() != 2 or centroids.dim() != 2 or feats.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"support_samples: expected feats [B, D] and centroids [C, D], got {tuple(feats.shape)}, "
            f"{tuple(centroids.shape)}"
        )
    if labels.dim() != 1 or labels.shape[0] != feats.shape[0]:
        raise ValueError(f"support_samples: labels must be [{feats.shape[0]}], got {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"support_samples: k must be >= 1, got {k}")
    num_c = centroids.shape[0]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_c):
        raise ValueError(f"support_samples: labels must lie in 0..{num_c - 1}")
    kk = min(k, num_c - 1)
    if kk < 1 or feats.shape[0] == 0:
        return feats.new_zeros((0, feats.shape[1])), labels.new_zeros((0,))
    cents = centroids.detach().to(feats.dtype)  # [C, D]
    sim = feats.detach() @ cents.t()  # [B, C]
    sim = sim.scatter(1, labels[:, None], float("-inf"))  # never pick the own cluster
    nearest = sim.topk(kk, dim=1).indices  # [B, k']
    delta = 0.5 * (cents[nearest] - cents[labels][:, None, :])  # [B, k', D]
    supports = F.normalize(feats[:, None, :] + lam * delta, dim=2)  # [B, k', D]
    return supports.reshape(-1, feats.shape[1]), labels.repeat_interleave(kk)
