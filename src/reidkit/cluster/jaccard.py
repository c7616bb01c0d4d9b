"""k-reciprocal Jaccard distance for pseudo-labelling (cluster-contrast style), sparse, O(N·k) memory."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from reidkit.evaluation.distance import as_float_tensor
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


def jaccard_distance(
    features: np.ndarray | torch.Tensor, k1: int = 30, k2: int = 6, *, chunk_size: int = 1024
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distances [N, N] between all samples, ready for
    `sklearn.cluster.DBSCAN(metric="precomputed")`; entries not stored mean distance 1.

    The variant of cluster-contrast / SpCL: k1 nearest neighbours (the sample itself included) by squared
    Euclidean distance, k1-reciprocal sets expanded by the 2/3 rule with round(k1/2)-reciprocal sets,
    weights = softmax(-squared distance) over each expanded set, mean over the k2 nearest neighbours,
    Jaccard = 1 - Σmin / (2 - Σmin) clamped at 0. The diagonal (0) is stored explicitly, so DBSCAN counts
    each point in its own neighbourhood as it does with a dense matrix.
    """
    if k1 < 2 or k2 < 1:
        raise ValueError(f"jaccard_distance needs k1 >= 2 and k2 >= 1, got k1={k1}, k2={k2}")
    x = as_float_tensor(features, "features")  # [N, D]
    n = x.shape[0]
    kh = half_k(k1)
    kmax = max(k1, k2, kh)
    if kmax > n:
        raise ValueError(f"jaccard_distance with k1={k1}, k2={k2} needs at least {kmax} samples, got {n}")
    idx, _ = knn_self(x, kmax, chunk_size=chunk_size)  # [N, K] nearest first, self included
    cand = idx[:, :k1]
    half = idx[:, :kh]
    rows, cols = expanded_sets(cand, reciprocal_mask(cand, cand), half, reciprocal_mask(half, half))
    v = softmax_encoding(rows, cols, pair_sqdist(x, x, rows, cols), (n, n))  # [N, N] CSR
    if k2 != 1:
        v = query_expand(v, idx[:, :k2])
    # S is symmetric: compute j >= i, then mirror (building the CSR by hand keeps the explicit zeros)
    rows, cols, vals = [], [], []
    for s, col0, min_sum in min_sum_blocks(v, v, upper=True):
        flat = np.flatnonzero(min_sum)  # shared support only; everything else is distance 1
        r, j = np.divmod(flat, min_sum.shape[1])
        m = min_sum.ravel()[flat]
        rows.append(r + s)
        cols.append(j + col0)
        vals.append(np.maximum(1.0 - m / (2.0 - m), 0.0).astype(np.float32))
    r, j, d = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    off = r != j
    r, j, d = np.concatenate([r, j[off]]), np.concatenate([j, r[off]]), np.concatenate([d, d[off]])
    order = np.lexsort((j, r))
    index_dtype = np.int32 if r.shape[0] < 2**31 and n < 2**31 else np.int64
    out = sp.csr_matrix(
        (
            d[order],
            j[order].astype(index_dtype),
            np.r_[0, np.cumsum(np.bincount(r, minlength=n))].astype(index_dtype),
        ),
        shape=(n, n),
    )
    log.debug("jaccard_distance: %d samples, %d stored pairs (%.1f per row)", n, out.nnz, out.nnz / max(n, 1))
    return out
