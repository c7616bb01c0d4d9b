"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), sparse and fast, plus a cross-modal variant.

Same numbers as the classic dense numpy implementation (to rounding: it stores the encodings in float16)
but built on a streamed kNN search and CSR encodings, so memory grows as N·k plus the [Q, G] output,
never N^2.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from reidkit.evaluation.distance import as_float_tensor, distance_blocks
from reidkit.evaluation.kreciprocal import (
    expanded_sets,
    half_k,
    knn_self,
    min_sum_blocks,
    pair_sqdist,
    query_expand,
    reciprocal_mask,
    softmax_encoding,
)

log = logging.getLogger(__name__)


def _check_params(k1: int, k2: int, lambda_value: float) -> None:
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")


def _pair(
    query_feats: np.ndarray | torch.Tensor, gallery_feats: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets as tensors of one floating dtype on one device (errors name the argument)."""
    q = as_float_tensor(query_feats, "query_feats")
    g = as_float_tensor(gallery_feats, "gallery_feats")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query_feats has dimension {q.shape[1]}, gallery_feats {g.shape[1]}")
    if q.device != g.device:
        raise ValueError(f"query_feats is on {q.device} but gallery_feats on {g.device}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    return q.to(dtype), g.to(dtype)


def _np_dtype(t: torch.Tensor) -> type:
    return np.float64 if t.dtype == torch.float64 else np.float32


def _image_encoding(
    x: torch.Tensor, k1: int, k2: int, *, chunk_size: int, capture: tuple[int, int, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix]:
    """kNN indices [N, K], row maxima [N], half-size neighbour sets and their reciprocal mask [N, kh], and
    the k-reciprocal encoding V [N, N] CSR (before query expansion) of the samples x [N, D]."""
    n = x.shape[0]
    kf, kh = k1 + 1, half_k(k1)
    kmax = max(kf, k2)
    if kmax > n:
        raise ValueError(f"re-ranking with k1={k1}, k2={k2} needs at least {kmax} samples, got {n}")
    idx, row_max = knn_self(x, kmax, with_max=True, chunk_size=chunk_size, capture=capture)  # [N, K], [N]
    row_max = np.maximum(row_max, np.finfo(np.float64).tiny)  # all-identical features: avoid 0/0
    half = idx[:, :kh]
    half_mask = reciprocal_mask(half, half)  # [N, kh]
    cand = idx[:, :kf]
    rows, cols = expanded_sets(cand, reciprocal_mask(cand, cand), half, half_mask)
    dist = pair_sqdist(x, x, rows, cols) / row_max[rows]  # the column-normalised original distance
    v = softmax_encoding(rows, cols, dist, (n, n), _np_dtype(x))
    return idx, row_max, half, half_mask, v


def k_reciprocal_rerank(
    query_feats: np.ndarray | torch.Tensor,
    gallery_feats: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Re-ranked distance matrix [Q, G] (smaller = closer) by k-reciprocal encoding.

    Classic semantics on query+gallery together: original distance = squared Euclidean, each column
    divided by its maximum; k1-reciprocal sets expanded by the 2/3 rule with round(k1/2)-reciprocal sets;
    Gaussian weights exp(-d); k2 query expansion; final = (1 - λ)·Jaccard + λ·original.
    The kNN search runs on the inputs' device; the rest is sparse numpy/scipy.
    """
    _check_params(k1, k2, lambda_value)
    q, g = _pair(query_feats, gallery_feats)
    nq, ng = q.shape[0], g.shape[0]
    if nq == 0 or ng == 0:
        raise ValueError(f"re-ranking needs non-empty query and gallery, got {nq} and {ng}")
    x = torch.cat([q, g])  # [N, D]
    out = np.empty((nq, ng), dtype=_np_dtype(x))  # [Q, G]: original distances first, final at the end

    idx, row_max, _, _, v = _image_encoding(x, k1, k2, chunk_size=chunk_size, capture=(nq, nq, out))
    out /= row_max[:nq, None].astype(out.dtype)
    if k2 != 1:
        v = query_expand(v, idx[:, :k2])
    _blend_jaccard(out, v[:nq], v[nq:], lambda_value)
    return out


def _blend_jaccard(out: np.ndarray, vq: sp.csr_matrix, vg: sp.csr_matrix, lambda_value: float) -> None:
    """out <- (1 - λ)·Jaccard(vq, vg) + λ·out, in place, a few query rows at a time.

    Jaccard is 1 wherever the encodings share no support (most pairs), so the blend is
    (1 - λ) + λ·out everywhere, minus (1 - λ)·m / (2 - m) where the min-sum m is non-zero.
    """
    out *= lambda_value
    out += 1.0 - lambda_value
    flat_out = out.reshape(-1)
    ng = out.shape[1]
    for s, _, min_sum in min_sum_blocks(vq.tocsr(), vg.tocsr()):
        nz = np.flatnonzero(min_sum)  # [P] shared-support pairs of this block
        m = min_sum.reshape(-1)[nz]
        flat_out[s * ng + nz] -= ((1.0 - lambda_value) * m / (2.0 - m)).astype(out.dtype)


def cross_modal_rerank(
    query_feats: np.ndarray | torch.Tensor,
    gallery_feats: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Re-ranked text->image distances [Q, G]: k-reciprocal encoding across modalities.

    Both sides are encoded over the gallery images. An image gets the classic encoding among images.
    A text query t gets Gaussian weights over its cross-modal k-reciprocal set {g in top-k1 images of t :
    t in top-k1 texts of g}, expanded by the images' round(k1/2)-reciprocal sets with the 2/3 rule.
    Query expansion averages t with its k2-1 nearest images (images: their k2 nearest images).
    final = (1 - λ)·Jaccard + λ·d(t, g)/max_g' d(t, g'), d = squared Euclidean distance.
    TextReID adds the re-ranking similarity 1 - Jaccard to the cosine score; for unit features (d = 2 - 2cos)
    this blend ranks each query's gallery exactly like cos + w·(1 - Jaccard) with w = (1 - λ)·max_g' d / (2λ).
    """
    _check_params(k1, k2, lambda_value)
    t, g = _pair(query_feats, gallery_feats)
    nq, ng = t.shape[0], g.shape[0]
    if k1 > nq or k1 > ng or k2 > ng:
        raise ValueError(
            f"cross-modal re-ranking with k1={k1}, k2={k2} needs more samples: {nq} queries, {ng} images"
        )
    idx_g, _, half, half_mask, v_g = _image_encoding(g, k1, k2, chunk_size=chunk_size)

    # text -> image distances (kept: they are the output size), forward and backward neighbours
    dist = torch.empty((nq, ng), dtype=t.dtype, device=t.device)  # [Q, G]
    fwd = np.empty((nq, k1), dtype=np.int64)  # top-k1 images of each text
    for s, block in distance_blocks(t, g, "sqeuclidean", chunk_size=chunk_size):
        dist[s : s + block.shape[0]] = block
        fwd[s : s + block.shape[0]] = block.topk(k1, dim=1, largest=False, sorted=True).indices.cpu().numpy()
    bwd = np.empty((ng, k1), dtype=np.int64)  # top-k1 texts of each image
    for s in range(0, ng, chunk_size):
        cols = dist[:, s : s + chunk_size].T  # [c, Q]
        bwd[s : s + cols.shape[0]] = cols.topk(k1, dim=1, largest=False, sorted=True).indices.cpu().numpy()
    t_max = dist.amax(1).double().cpu().numpy()  # [Q]
    t_max = np.maximum(t_max, np.finfo(np.float64).tiny)
    out = dist.cpu().numpy()  # [Q, G]
    del dist

    rows, cols = expanded_sets(fwd, reciprocal_mask(fwd, bwd), half, half_mask)
    d_t = out[rows, cols].astype(np.float64) / t_max[rows]
    v_t = softmax_encoding(rows, cols, d_t, (nq, ng), _np_dtype(t))
    out /= t_max[:, None].astype(out.dtype)
    if k2 != 1:
        # text rows: itself plus its k2-1 nearest images; image rows: their k2 nearest images
        nbr_t = np.concatenate([ng + np.arange(nq)[:, None], fwd[:, : k2 - 1]], axis=1)  # [Q, k2]
        v_t = query_expand(sp.vstack([v_g, v_t]).tocsr(), nbr_t)
        v_g = query_expand(v_g, idx_g[:, :k2])
    _blend_jaccard(out, v_t, v_g, lambda_value)
    return out
