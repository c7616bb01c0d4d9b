"""Sparse k-reciprocal Jaccard distance against the dense cluster-contrast definition, and DBSCAN on it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from reidkit.cluster import jaccard_distance
from reidkit.evaluation import kreciprocal as K
from tests.oracles import clustered, kreciprocal_jaccard, sq_dists


def dense_jaccard(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The definition, dense float64: k1 neighbours (self included) by squared Euclidean distance, k1- and
    round(k1/2)-reciprocal sets with the 2/3 expansion, softmax(-d) weights, k2 mean, 1 - m / (2 - m)."""
    x = x.astype(np.float64)
    return np.maximum(kreciprocal_jaccard(sq_dists(x, x), k1, k2, self_counts=True), 0.0)


def points(n: int = 260, dim: int = 16, n_ids: int = 25, noise: float = 0.6, seed: int = 0) -> np.ndarray:
    return clustered(n, dim, n_ids, noise, seed)[0]


def densify(m: sp.csr_matrix) -> np.ndarray:
    """Absent entries mean distance 1."""
    out = np.ones(m.shape)
    coo = m.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


@pytest.mark.parametrize(("k1", "k2", "block"), [(30, 6, 2048), (30, 6, 33), (20, 1, 100), (9, 3, 2048)])
def test_matches_dense_definition(k1: int, k2: int, block: int, monkeypatch) -> None:
    # small blocks and a small work budget exercise the chunked kNN and the chunked upper-triangle sums
    monkeypatch.setattr(K, "_JACCARD_WORK", 5000 if block < 2048 else K._JACCARD_WORK)
    x = points(seed=k1)
    got = jaccard_distance(x, k1, k2, chunk_size=block)
    assert isinstance(got, sp.csr_matrix) and got.shape == (260, 260)
    want = dense_jaccard(x, k1, k2)
    np.testing.assert_allclose(densify(got), want, atol=1e-5)
    assert got.nnz == int((want < 1).sum())  # exactly the pairs with shared support are stored


def test_properties_symmetric_zero_diagonal_stored() -> None:
    got = jaccard_distance(torch.from_numpy(points(seed=1)).float(), 20, 6)
    dense = densify(got)
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.all(got.diagonal() <= 1e-6)
    # the diagonal is stored even though it is ~0, so DBSCAN counts every point in its own neighbourhood
    coo = got.tocoo()
    assert int((coo.row == coo.col).sum()) == got.shape[0]


def test_dbscan_same_clusters_as_dense() -> None:
    x = points(n=300, noise=0.55, seed=2)
    sparse_labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(
        jaccard_distance(x, 30, 6)
    )
    dense_labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(dense_jaccard(x, 30, 6))
    np.testing.assert_array_equal(sparse_labels, dense_labels)
    assert len(set(dense_labels) - {-1}) > 5  # a non-trivial clustering


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="needs at least 30 samples"):
        jaccard_distance(np.zeros((10, 3)), 30, 6)
    with pytest.raises(ValueError, match="2-D"):
        jaccard_distance(np.zeros(10))
