"""TextReID's cross-modal re-ranking by top-k neighbour overlap (Han et al., BMVC 2021, reference code).

score(q, g) = cos(q, g) + weight · |N_k(q) ∩ M_k(g)| / |N_k(q) ∪ M_k(g)|, where N_k(q) are the k gallery items
most similar to query q and M_k(g) the k gallery items most similar to gallery item g (g itself included).
Text->image: queries are texts, the gallery images; image->text: swap the two. The neighbour sets are kept
as 0/1 indicator matrices, so every intersection comes from one matrix product.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reidkit.evaluation.distance import as_float_tensor


def _topk_indices(x: torch.Tensor, y: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    """[len(x), k] indices of the k rows of y with the largest dot product with each row of x."""
    out = torch.empty((x.shape[0], k), dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], chunk_size):
        out[s : s + chunk_size] = (x[s : s + chunk_size] @ y.t()).topk(k, dim=1).indices
    return out


def _indicator(idx: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """[M, n] 0/1 matrix with ones at (row, idx[row, j])."""
    ind = torch.zeros((idx.shape[0], n), dtype=dtype, device=idx.device)
    return ind.scatter_(1, idx, 1.0)


def topk_overlap_similarity(
    query_feats: np.ndarray | torch.Tensor,
    gallery_feats: np.ndarray | torch.Tensor,
    topk: int = 5,
    weight: float = 0.05,
    *,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Re-ranked similarity [Q, G] (larger = closer): cosine + weight · Jaccard of top-k neighbour sets.

    Features are L2-normalised here. `topk` is capped at the gallery size (then every set is the whole
    gallery). Memory: the [Q, G] output plus the [G, G] gallery indicator matrix.
    """
    if topk < 1:
        raise ValueError(f"topk_overlap_similarity: topk must be >= 1, got {topk}")
    q = F.normalize(as_float_tensor(query_feats, "query_feats"), dim=1)
    g = F.normalize(as_float_tensor(gallery_feats, "gallery_feats"), dim=1)
    if q.shape[1] != g.shape[1] or q.device != g.device:
        raise ValueError(
            f"query_feats {tuple(q.shape)} on {q.device} and gallery_feats {tuple(g.shape)} on {g.device} "
            "must share the dimension and the device"
        )
    if q.shape[0] == 0 or g.shape[0] == 0:
        raise ValueError(f"re-ranking needs non-empty query and gallery, got {q.shape[0]} and {g.shape[0]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(dtype)
    n, k = g.shape[0], min(topk, g.shape[0])
    q_sets = _indicator(_topk_indices(q, g, k, chunk_size), n, dtype)  # [Q, G]
    g_sets = _indicator(_topk_indices(g, g, k, chunk_size), n, dtype)  # [G, G]
    inter = q_sets @ g_sets.t()  # [Q, G] shared neighbours (exact small integers)
    jaccard = inter / (2 * k - inter)  # both sets hold exactly k items
    return q @ g.t() + weight * jaccard


def topk_overlap_distance(
    query_feats: np.ndarray | torch.Tensor,
    gallery_feats: np.ndarray | torch.Tensor,
    topk: int = 5,
    weight: float = 0.05,
    *,
    chunk_size: int = 1024,
) -> np.ndarray:
    """1 - topk_overlap_similarity as a numpy [Q, G] distance (smaller = closer), the evaluation's input."""
    sim = topk_overlap_similarity(query_feats, gallery_feats, topk, weight, chunk_size=chunk_size)
    return (1.0 - sim).cpu().numpy()
