"""Oracles for the evaluation tests: a naive per-query metrics loop and the dense re-ranking definition."""

from __future__ import annotations

import functools

import numpy as np
import pytest


def naive_rank_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray | None,
    g_camids: np.ndarray | None,
    max_rank: int = 50,
    cross_camera: bool = True,
    exclude_self: bool = False,
) -> tuple[np.ndarray, float, float, int]:
    """(cmc, mAP, mINP, valid queries): sort each row (stable), drop junk, read the match list."""
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        junk = np.zeros(order.shape[0], dtype=bool)
        if cross_camera:
            junk |= (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        if exclude_self:
            junk |= order == i
        match = (g_pids[order] == q_pids[i])[~junk].astype(np.float64)
        if match.sum() == 0:
            continue
        hits = np.cumsum(match)
        cmc = np.ones(max_rank)
        first = int(np.flatnonzero(match)[0])
        cmc[:first] = 0.0
        cmcs.append(cmc)
        aps.append(float(np.sum(hits / np.arange(1, match.shape[0] + 1) * match) / match.sum()))
        inps.append(float(match.sum() / (np.flatnonzero(match)[-1] + 1)))
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(aps)


def dense_rerank(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    """k-reciprocal re-ranking straight from its definition (Zhong et al. 2017), dense float64, loops."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    nq, n = qf.shape[0], x.shape[0]
    sq = (x * x).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    orig = (d / d.max(axis=0)).T  # each column divided by its maximum, as in the classic code
    rank = np.argsort(orig, axis=1, kind="stable")
    kh = int(np.around(k1 / 2.0))

    @functools.cache
    def recip(i: int, k: int) -> np.ndarray:
        fwd = rank[i, : k + 1]
        return np.array([j for j in fwd if i in rank[j, : k + 1]], dtype=np.int64)

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        expanded = list(r)
        for c in r:
            rc = recip(c, kh)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                expanded.extend(rc)
        e = np.unique(expanded)
        w = np.exp(-orig[i, e])
        v[i, e] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((nq, n))
    for i in range(nq):
        s = np.minimum(v[i][None, :], v).sum(1)
        jac[i] = 1.0 - s / (2.0 - s)
    return ((1.0 - lam) * jac + lam * orig[:nq])[:, nq:]


def clustered(n: int, dim: int, n_ids: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised float64 points around n_ids random centres, and their ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))
    labels = rng.integers(0, n_ids, n)
    x = centres[labels] + noise * rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


@pytest.fixture
def naive_metrics():
    return naive_rank_metrics


@pytest.fixture
def dense_rerank_oracle():
    return dense_rerank


@pytest.fixture
def clustered_points():
    return clustered
