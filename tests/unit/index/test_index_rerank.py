"""Query-time re-ranking: over the whole gallery (pool >= gallery) the order is that of k_reciprocal_rerank on
the query and every gallery vector; scores stay cosine similarities; FAISS indexes give their vectors back."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.evaluation.rerank import k_reciprocal_rerank
from reidkit.index import ExactIndex, FaissIndex, GalleryIndex
from reidkit.types import Features, Record

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def _gallery(n: int = 60, dim: int = 12, seed: int = 0) -> tuple[Features, list[Record]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, dim))
    pids = np.arange(n) % 6
    x = centres[pids] + 0.6 * rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    records = [Record(f"/g/{i}.jpg", int(p), i % 3) for i, p in enumerate(pids)]
    return Features(x, pids, np.arange(n) % 3, np.arange(n)), records


@pytest.mark.parametrize("factory", ["Exact", "Flat"])
def test_reranked_order_is_k_reciprocal_over_the_gallery(factory):
    feats, records = _gallery()
    gi = GalleryIndex.build(feats, records, factory=factory)
    q = np.random.default_rng(5).standard_normal((3, feats.feats.shape[1])).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    hits = gi.query(q, 10, rerank={"k1": 8, "k2": 3, "lambda_value": 0.3})
    for r, row in enumerate(hits):
        want = np.argsort(k_reciprocal_rerank(q[r : r + 1], feats.feats, 8, 3, 0.3)[0], kind="stable")[:10]
        assert [h.entry.id for h in row] == want.tolist()
        np.testing.assert_allclose([h.score for h in row], feats.feats[want] @ q[r], rtol=1e-5, atol=1e-6)
        assert [h.rank for h in row] == list(range(1, 11))
    plain = gi.query(q, 10)
    assert any([h.entry.id for h in a] != [h.entry.id for h in b] for a, b in zip(hits, plain, strict=True))


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat", "HNSW8"])
def test_indexes_give_their_vectors_back(factory):
    feats, _ = _gallery()
    ids = np.arange(len(feats)) * 3 + 7
    exact, fi = ExactIndex(feats.feats.shape[1]), FaissIndex(feats.feats.shape[1], factory)
    exact.add(feats.feats, ids)
    fi.add(feats.feats, ids)
    pick = ids[[5, 0, 17]]
    np.testing.assert_allclose(fi.reconstruct(pick), feats.feats[[5, 0, 17]], atol=1e-6)
    np.testing.assert_allclose(exact.reconstruct(pick), feats.feats[[5, 0, 17]], atol=1e-6)
    with pytest.raises(KeyError):
        exact.reconstruct(np.array([1]))
