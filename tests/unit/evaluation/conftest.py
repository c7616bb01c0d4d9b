"""Oracles for the evaluation tests: a naive per-query metrics loop and the dense re-ranking definition."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import clustered, kreciprocal_jaccard, sq_dists


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
    nq = qf.shape[0]
    d = sq_dists(x, x)
    orig = (d / d.max(axis=0)).T  # each column divided by its maximum, as in the classic code
    jac = kreciprocal_jaccard(orig, k1, k2, rows=nq)
    return ((1.0 - lam) * jac + lam * orig[:nq])[:, nq:]


@pytest.fixture
def naive_metrics():
    return naive_rank_metrics


@pytest.fixture
def dense_rerank_oracle():
    return dense_rerank


@pytest.fixture
def clustered_points():
    return clustered
