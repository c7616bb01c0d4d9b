"""Naive references shared by tests in several packages: k-reciprocal encodings and Jaccard, dense loops."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


def clustered(n: int, dim: int, n_ids: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised float64 points around n_ids random centres, and their ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))
    labels = rng.integers(0, n_ids, n)
    x = centres[labels] + noise * rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [A, B], clamped at 0."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)


def reciprocal_sets(rank: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """recip(i, n): the first n entries j of rank[i] that have i among the first n entries of rank[j]."""

    @functools.cache
    def recip(i: int, n: int) -> np.ndarray:
        return np.array([j for j in rank[i, :n] if i in rank[j, :n]], dtype=np.int64)

    return recip


def expanded_encoding(
    r: np.ndarray, recip: Callable[[int, int], np.ndarray], kh: int, dist_row: np.ndarray
) -> np.ndarray:
    """One sample's encoding [N]: its reciprocal set `r` grown by recip(c, kh + 1) of every c in r that
    shares more than 2/3 of it with r, weighted by softmax(-dist_row) over the grown set (zeros if r is
    empty)."""
    v = np.zeros(dist_row.shape[0])
    if len(r) == 0:
        return v
    e = list(r)
    for c in r:
        rc = recip(c, kh + 1)
        if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
            e.extend(rc)
    e = np.unique(e)
    w = np.exp(-dist_row[e])
    v[e] = w / w.sum()
    return v


def jaccard_of_encodings(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """Jaccard distance [A, B] between encodings: 1 - Σmin / (2 - Σmin) (not clamped)."""
    jac = np.zeros((va.shape[0], vb.shape[0]))
    for i in range(va.shape[0]):
        s = np.minimum(va[i][None], vb).sum(1)
        jac[i] = 1.0 - s / (2.0 - s)
    return jac


def kreciprocal_jaccard(
    dist: np.ndarray, k1: int, k2: int, *, self_counts: bool = False, rows: int | None = None
) -> np.ndarray:
    """k-reciprocal Jaccard distances [rows, N] from a [N, N] distance matrix, straight from the definition
    (Zhong et al., CVPR 2017): rows of `dist` rank the neighbours (stable sort) and give the softmax(-d)
    weights; k1-reciprocal sets over the k1 nearest neighbours plus the sample itself, or k1 including it
    when `self_counts` (the cluster-contrast variant); round(k1/2)-reciprocal expansion; k2 query
    expansion; `rows`: only the first rows of the result (all N by default)."""
    n = dist.shape[0]
    rank = np.argsort(dist, axis=1, kind="stable")
    recip = reciprocal_sets(rank)
    kh = int(np.around(k1 / 2.0))
    n1 = k1 if self_counts else k1 + 1
    v = np.stack([expanded_encoding(recip(i, n1), recip, kh, dist[i]) for i in range(n)])
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    return jaccard_of_encodings(v[: n if rows is None else rows], v)
