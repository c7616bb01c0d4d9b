"""Query-time k-reciprocal re-ranking of an index's top candidates: the query and its `RERANK_POOL` nearest
entries are re-ranked together (Zhong et al.), without the whole gallery's pairwise distances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

RERANK_POOL = 100  # candidates re-ranked per query (their k-reciprocal sets are found among them)


def reranked_search(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    reconstruct: Callable[[np.ndarray], np.ndarray],
    vecs: np.ndarray,
    k: int,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k], ids [Q, k]) in re-ranked order; the scores are the candidates' cosine similarities.
    `options`: k1, k2, lambda_value of `k_reciprocal_rerank` ({} = defaults; k1, k2 capped at the pool)."""
    from reidkit.evaluation.rerank import k_reciprocal_rerank

    q = np.asarray(vecs, dtype=np.float32)
    q = q.reshape(1, -1) if q.ndim == 1 else q
    scores, ids = search(q, max(k, RERANK_POOL))  # [Q, pool]
    out_s = np.full((len(ids), k), -np.inf, np.float32)
    out_i = np.full((len(ids), k), -1, np.int64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    for r, (srow, irow) in enumerate(zip(scores, ids, strict=True)):
        keep = irow >= 0
        cand, cand_s = irow[keep], srow[keep]
        if len(cand) < 2:  # nothing to re-rank
            out_s[r, : len(cand)], out_i[r, : len(cand)] = cand_s[:k], cand[:k]
            continue
        opts = {"k1": 20, "k2": 6, **options}
        opts["k1"], opts["k2"] = min(opts["k1"], len(cand)), min(opts["k2"], len(cand))
        dist = k_reciprocal_rerank(q[r : r + 1], reconstruct(cand), **opts)[0]  # [pool]
        order = np.argsort(dist, kind="stable")[:k]
        out_s[r, : len(order)], out_i[r, : len(order)] = cand_s[order], cand[order]
    return out_s, out_i
