"""Sparse k-reciprocal re-ranking against the dense definition, plus the cross-modal variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation import cross_modal_rerank, k_reciprocal_rerank
from reidkit.evaluation.kreciprocal import knn_self
from tests.oracles import expanded_encoding, jaccard_of_encodings, reciprocal_sets, sq_dists


@pytest.mark.parametrize(
    ("k1", "k2", "lam", "block"),
    [(20, 6, 0.3, 2048), (20, 6, 0.3, 37), (7, 1, 0.5, 64), (5, 3, 0.0, 2048), (9, 2, 0.9, 50)],
)
def test_matches_dense_definition(
    k1: int, k2: int, lam: float, block: int, dense_rerank_oracle, clustered_points
) -> None:
    # odd k1 exercise round-half-to-even in round(k1/2): 5 -> 2, 7 -> 4, 9 -> 4; small blocks exercise the
    # block-wise kNN (blocks straddling the query/gallery boundary included)
    x, _ = clustered_points(240, 12, 30, 0.7, seed=k1)
    q, g = x[:50], x[50:]
    got = k_reciprocal_rerank(q, g, k1, k2, lam, chunk_size=block)
    assert got.shape == (50, 190) and got.dtype == np.float64
    np.testing.assert_allclose(got, dense_rerank_oracle(q, g, k1, k2, lam), atol=1e-10)


def test_float32_and_torch_inputs(dense_rerank_oracle, clustered_points) -> None:
    x, _ = clustered_points(200, 8, 20, 0.6, seed=3)
    want = dense_rerank_oracle(x[:40], x[40:], 20, 6, 0.3)
    got = k_reciprocal_rerank(torch.from_numpy(x[:40]).float(), torch.from_numpy(x[40:]).float())
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_knn_self_against_argsort() -> None:
    x = np.random.default_rng(9).standard_normal((101, 5))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    out = np.zeros((30, 61))
    idx, row_max = knn_self(torch.from_numpy(x), 9, with_max=True, chunk_size=16, capture=(30, 40, out))
    np.testing.assert_array_equal(idx, np.argsort(d, axis=1, kind="stable")[:, :9])
    np.testing.assert_allclose(row_max, d.max(1), rtol=1e-12)
    np.testing.assert_allclose(out, d[:30, 40:], atol=1e-12)


def test_lambda_one_is_the_normalised_original(clustered_points) -> None:
    x, _ = clustered_points(60, 6, 8, 0.5, seed=4)
    q, g = x[:10], x[10:]
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)  # all pairs, query+gallery
    want = d[:10, 10:] / d[:10].max(axis=1, keepdims=True)
    np.testing.assert_allclose(k_reciprocal_rerank(q, g, 5, 3, 1.0), want, atol=1e-10)


def test_rerank_improves_retrieval_on_clusters(clustered_points) -> None:
    # a property the method exists for: on clustered data it should not hurt nearest-neighbour accuracy
    x, y = clustered_points(300, 16, 20, 1.2, seed=5)
    q, g, yq, yg = x[:60], x[60:], y[:60], y[60:]
    base = ((q[:, None] - g[None]) ** 2).sum(-1)
    rr = k_reciprocal_rerank(q, g, 10, 3, 0.3)
    acc = [float(np.mean(yg[d.argmin(1)] == yq)) for d in (base, rr)]
    assert acc[1] >= acc[0] - 0.02


def test_bad_parameters() -> None:
    x = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(ValueError, match="needs at least 21 samples"):
        k_reciprocal_rerank(x[:3], x[3:])
    with pytest.raises(ValueError, match="lambda_value"):
        k_reciprocal_rerank(x[:3], x[3:], 2, 2, 1.5)
    with pytest.raises(ValueError, match="dimension"):
        k_reciprocal_rerank(x[:3, :2], x[3:])


# ------------------------------------------------------------------------------------------ cross-modal
def dense_cross_modal(t: np.ndarray, g: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    """The cross-modal definition (see cross_modal_rerank's docstring), dense float64 with loops."""
    nq, ng = t.shape[0], g.shape[0]
    dgg, dtg = sq_dists(g, g), sq_dists(t, g)
    ogg = dgg / dgg.max(axis=1, keepdims=True)
    otg = dtg / dtg.max(axis=1, keepdims=True)
    rank_g = np.argsort(dgg, axis=1, kind="stable")
    fwd_t = np.argsort(dtg, axis=1, kind="stable")[:, :k1]  # images of each text
    bwd_g = np.argsort(dtg.T, axis=1, kind="stable")[:, :k1]  # texts of each image
    kh = int(np.around(k1 / 2.0))
    recip_g = reciprocal_sets(rank_g)
    vg = np.stack([expanded_encoding(recip_g(i, k1 + 1), recip_g, kh, ogg[i]) for i in range(ng)])
    recip_t = [np.array([j for j in fwd_t[i] if i in bwd_g[j]], dtype=np.int64) for i in range(nq)]
    vt = np.stack([expanded_encoding(recip_t[i], recip_g, kh, otg[i]) for i in range(nq)])
    if k2 != 1:
        vt = np.stack([(vt[i] + vg[fwd_t[i, : k2 - 1]].sum(0)) / k2 for i in range(nq)])
        vg = np.stack([vg[rank_g[i, :k2]].mean(0) for i in range(ng)])
    return (1 - lam) * jaccard_of_encodings(vt, vg) + lam * otg


@pytest.mark.parametrize(("k1", "k2", "lam"), [(10, 4, 0.3), (5, 1, 0.5)])
def test_cross_modal_matches_definition(k1: int, k2: int, lam: float, clustered_points) -> None:
    x, _ = clustered_points(200, 10, 25, 0.6, seed=8)
    # "text" queries: shifted by a modality offset, so text-text pairs are closer than text-image pairs
    t = x[:70] + 0.3 * np.eye(10)[0]
    g = x[70:]
    got = cross_modal_rerank(t, g, k1, k2, lam)
    assert got.shape == (70, 130)
    np.testing.assert_allclose(got, dense_cross_modal(t, g, k1, k2, lam), atol=1e-10)


def test_cross_modal_blend_is_cosine_plus_weighted_jaccard_similarity(clustered_points) -> None:
    """The docstring's claim: for unit features the blend is a per-query decreasing affine map of
    cos + w·(1 - Jaccard), w = (1 - λ)·max d / (2λ), so it ranks like TextReID's 'added' similarity."""
    x, _ = clustered_points(120, 8, 15, 0.6, seed=3)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    t, g, lam = x[:40], x[40:], 0.3
    jac = cross_modal_rerank(t, g, 10, 4, 0.0)  # λ = 0: the Jaccard distance alone
    cos = t @ g.T
    m = (2 - 2 * cos).max(1, keepdims=True)  # max_g' d(t, g')
    score = cos + (1 - lam) * m / (2 * lam) * (1 - jac)
    expected = (1 - lam) + 2 * lam / m - 2 * lam / m * score
    np.testing.assert_allclose(cross_modal_rerank(t, g, 10, 4, lam), expected, atol=1e-9)
