"""Retrieval metrics: CMC / mAP / mINP (cross-camera and CUHK03 CMC protocols) and Recall@K.

`rank_metrics` is the one place that turns a distance matrix into CMC/mAP/mINP; everything else in the
project calls it. It never sorts whole rows: per query it only looks at the gallery items that are at
least as close as the hardest positive (that is all AP, INP and the CMC need), which makes it exact and
several times faster than a full argsort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from reidkit.evaluation.distance import as_float_tensor, distance_blocks
from reidkit.evaluation.kreciprocal import ragged_arange
from reidkit.types import Report

log = logging.getLogger(__name__)

AP_MODES = ("standard", "sklearn")
# the Recall@K of fine-grained retrieval (CUB-200, Cars-196, ...), as the metric-learning papers report it
FINE_GRAINED_KS = (1, 2, 4, 8)
CMC_PROTOCOLS = ("standard", "cuhk03")  # the CMC of rank_metrics: all gallery items, or CUHK03 single shot
# Query chunks are sized so one chunk of the distance matrix holds about this many entries.
_BLOCK_ENTRIES = 1 << 22
# When more than this fraction of a chunk is closer than the hardest positives, sort whole rows instead.
_DENSE_FRACTION = 0.25

_warned_no_cameras = False


@dataclass
class QueryStats:
    """Per-query results for the queries that have at least one valid match."""

    query_index: np.ndarray  # [V] int64: rows of the distance matrix these results belong to
    first_rank: np.ndarray  # [V] int64: 0-based rank of the first match among the kept gallery items
    ap: np.ndarray  # [V] float64
    inp: np.ndarray  # [V] float64
    num_queries: int  # rows looked at (valid or not)


@dataclass(frozen=True)
class _Labels:
    """What the per-chunk worker needs besides the distances (pids sorted once for the whole matrix)."""

    q_pids: np.ndarray  # [Q]
    g_pids: np.ndarray  # [G]
    q_camids: np.ndarray | None  # [Q]
    g_camids: np.ndarray | None  # [G]
    g_order: np.ndarray  # [G] gallery indices sorted by pid
    lo: np.ndarray  # [Q] first position of the query's pid in g_order
    hi: np.ndarray  # [Q] one past the last
    cross_camera: bool
    exclude_self: bool
    ap: str


def _as_numpy_1d(x: np.ndarray | torch.Tensor | list, name: str, n: int) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name}: expected a 1-D array of length {n}, got shape {a.shape}")
    return a


def _check_ap(ap: str) -> None:
    if ap not in AP_MODES:
        raise ValueError(f"unknown ap mode {ap!r}; valid: {', '.join(AP_MODES)}")


def resolve_camera_rule(q_camids: np.ndarray, g_camids: np.ndarray) -> bool:
    """True when the same-camera rule applies; data without cameras (all camid == -1) is treated as
    query and gallery coming from different cameras (a warning is logged once per process)."""
    global _warned_no_cameras
    if np.all(q_camids == -1) and np.all(g_camids == -1):
        if not _warned_no_cameras:
            log.warning(
                "no camera ids (camid == -1 everywhere): treating query and gallery as different cameras, "
                "so no same-camera gallery item is removed"
            )
            _warned_no_cameras = True
        return False
    return True


def query_stats(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray | None = None,
    g_camids: np.ndarray | None = None,
    *,
    cross_camera: bool = True,
    exclude_self: bool = False,
    ap: str = "standard",
) -> QueryStats:
    """First-match rank, AP and INP of every query with a valid match (the engine behind rank_metrics).

    Removed ("junk") per query: gallery items with the same pid and the same camera when `cross_camera`,
    and gallery item i for query i when `exclude_self` (query set == gallery set). Ties in distance are
    broken by gallery index (a stable sort), except `ap="sklearn"`, which scores tied items together.
    """
    _check_ap(ap)
    if not isinstance(distmat, np.ndarray | torch.Tensor) or distmat.ndim != 2:
        raise ValueError(f"distmat: expected a 2-D array [Q, G], got {type(distmat).__name__}")
    nq, ng = int(distmat.shape[0]), int(distmat.shape[1])
    q_pids = _as_numpy_1d(q_pids, "q_pids", nq)
    g_pids = _as_numpy_1d(g_pids, "g_pids", ng)
    if cross_camera:
        if q_camids is None or g_camids is None:
            raise ValueError("q_camids and g_camids are required when cross_camera=True")
        q_camids = _as_numpy_1d(q_camids, "q_camids", nq)
        g_camids = _as_numpy_1d(g_camids, "g_camids", ng)
    if exclude_self and nq != ng:
        raise ValueError(f"exclude_self needs query set == gallery set, got {nq} queries, {ng} gallery items")
    if ng == 0 or nq == 0:
        raise ValueError(f"distmat is empty: {nq} queries x {ng} gallery items")

    # Same-pid gallery items per query, found through the gallery sorted by pid (no Q x G pid matrix).
    g_order = np.argsort(g_pids, kind="stable")
    g_sorted = g_pids[g_order]
    lo = np.searchsorted(g_sorted, q_pids, side="left")
    hi = np.searchsorted(g_sorted, q_pids, side="right")

    labels = _Labels(q_pids, g_pids, q_camids, g_camids, g_order, lo, hi, cross_camera, exclude_self, ap)
    chunk = max(1, _BLOCK_ENTRIES // max(ng, 1))
    parts: list[tuple[np.ndarray, ...]] = []
    buf = np.empty(min(chunk, nq) * ng, dtype=bool)
    for a in range(0, nq, chunk):
        block = distmat[a : min(nq, a + chunk)]
        block = block.detach().cpu().numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
        parts.append(_chunk_stats(block, a, labels, buf))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    return QueryStats(query_index=cat[0], first_rank=cat[1], ap=cat[2], inp=cat[3], num_queries=nq)


def _chunk_stats(block: np.ndarray, a: int, lab: _Labels, buf: np.ndarray) -> tuple[np.ndarray, ...]:
    """Stats for queries a..a+c-1 given their distance rows `block` [c, G]; `buf`: >= c*G bools."""
    c, ng = block.shape
    rows_q = np.arange(a, a + c)
    q_pids, g_pids, lo, hi = lab.q_pids, lab.g_pids, lab.lo, lab.hi

    def junk_of(qi: np.ndarray, gj: np.ndarray) -> np.ndarray:
        # qi, gj: same-pid (query, gallery) pairs; which of them are removed from the ranking.
        junk = np.zeros(qi.shape[0], dtype=bool)
        if lab.cross_camera:
            junk |= lab.g_camids[gj] == lab.q_camids[qi]
        if lab.exclude_self:
            junk |= gj == qi
        return junk

    # Threshold per query: the distance of its hardest positive (-inf when it has none).
    counts = hi[a : a + c] - lo[a : a + c]  # [c]
    pq = np.repeat(rows_q, counts)  # [P] query of each same-pid pair
    pg = lab.g_order[ragged_arange(lo[a : a + c], counts)]  # [P] gallery item of each same-pid pair
    keep_pair = ~junk_of(pq, pg)
    pq, pg = pq[keep_pair], pg[keep_pair]
    npos = np.bincount(pq - a, minlength=c)  # [c]
    thr = np.full(c, -np.inf, dtype=np.float64)
    np.maximum.at(thr, pq - a, block[pq - a, pg].astype(np.float64))

    # Candidates: everything at least as close as the hardest positive, in (row, distance, index) order.
    # `not (d > thr)` also catches NaN, so the NaN check below only needs the candidates.
    far = buf[: c * ng].reshape(c, ng)  # [c, G], a reused buffer (fresh pages would cost page faults)
    np.greater(block, thr[:, None].astype(block.dtype), out=far)
    flat = np.flatnonzero(np.logical_not(far, out=far))  # row-major: index ascending within a row
    if flat.shape[0] > _DENSE_FRACTION * c * ng:
        if np.isnan(block).any():
            raise ValueError(f"distmat has NaN entries in rows {a}..{a + c - 1}")
        order = np.argsort(block, axis=1, kind="stable")  # [c, G]
        rr = np.repeat(np.arange(c), ng)
        jj = order.ravel()
        dd = np.take_along_axis(block, order, axis=1).ravel()
        inside = dd <= thr[rr]  # drop what lies beyond the hardest positive
        rr, jj, dd = rr[inside], jj[inside], dd[inside]
    else:
        rr, jj = np.divmod(flat, ng)
        dd = block[rr, jj]
        if np.isnan(dd).any():
            raise ValueError(f"distmat has NaN entries in rows {a}..{a + c - 1}")
        srt = np.lexsort((dd, rr))  # stable: equal distances keep index order
        rr, jj, dd = rr[srt], jj[srt], dd[srt]
    if np.isnan(thr).any():
        raise ValueError(f"distmat has NaN entries in rows {a}..{a + c - 1}")

    qq = rr + a
    same = g_pids[jj] == q_pids[qq]
    junk = np.zeros(rr.shape[0], dtype=bool)
    junk[same] = junk_of(qq[same], jj[same])
    pos = same & ~junk
    kept = ~junk
    kept_before = np.r_[0, np.cumsum(kept)]  # [C + 1] kept items before each position
    pos_before = np.r_[0, np.cumsum(pos)]  # [C + 1] positives before each position
    row_start = np.searchsorted(rr, np.arange(c), side="left")  # [c] first position of each row
    kept_base = kept_before[row_start][rr]  # [C] kept items in earlier rows
    pos_base = pos_before[row_start][rr]
    rank = kept_before[1:] - 1 - kept_base  # [C] 0-based rank among the kept items of the same row

    prow = rr[pos]  # [P] rows of the positives, in rank order within each row
    prank = rank[pos].astype(np.float64)
    if lab.ap == "standard":
        hits = (pos_before[1:] - pos_base)[pos].astype(np.float64)  # i-th positive of its row, 1-based
        prec = hits / (prank + 1.0)
    else:
        # sklearn's average_precision_score: precision at each distinct threshold, i.e. tied items are
        # scored together at the end of their tie group.
        n = rr.shape[0]
        brk = np.ones(n, dtype=bool)
        brk[:-1] = (rr[1:] != rr[:-1]) | (dd[1:] != dd[:-1])  # last element of each (row, distance) group
        ends = np.flatnonzero(brk)
        after_group = ends[np.searchsorted(ends, np.arange(n), side="left")] + 1  # [C]
        hits_end = (pos_before[after_group] - pos_base)[pos].astype(np.float64)
        kept_end = (kept_before[after_group] - kept_base)[pos].astype(np.float64)
        prec = hits_end / kept_end
    npos_found = np.bincount(prow, minlength=c)
    if not np.array_equal(npos_found, npos):
        raise RuntimeError("internal error: positives missing from the candidate set")
    valid = npos > 0
    ap_row = np.bincount(prow, weights=prec, minlength=c)[valid] / npos[valid]
    last = np.full(c, -1.0)
    np.maximum.at(last, prow, prank)
    first = np.full(c, np.inf)
    np.minimum.at(first, prow, prank)
    inp_row = npos[valid] / (last[valid] + 1.0)
    return rows_q[valid], first[valid].astype(np.int64), ap_row, inp_row


def report_from_stats(stats: QueryStats, max_rank: int = 50) -> Report:
    """Average per-query stats into a Report (CMC of length max_rank); error if no query is valid."""
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    nv = int(stats.first_rank.shape[0])
    if nv == 0:
        raise ValueError(
            f"none of the {stats.num_queries} queries has a valid match in the gallery "
            "(every same-pid gallery item was removed or absent)"
        )
    if nv < stats.num_queries:
        log.info("%d of %d queries have no valid match: skipped", stats.num_queries - nv, stats.num_queries)
    first_hist = np.bincount(np.minimum(stats.first_rank, max_rank), minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(first_hist) / nv  # [max_rank]
    return Report(cmc=cmc, mAP=float(stats.ap.mean()), mINP=float(stats.inp.mean()), num_valid_queries=nv)


def rank_metrics(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    *,
    ap: str = "standard",
    protocol: str = "standard",
    repeats: int = 10,
    seed: int = 0,
) -> Report:
    """CMC, mAP and mINP of a [Q, G] distance matrix under the cross-camera protocol.

    For each query, gallery items with the same pid and the same camera are removed, and queries left
    without a match are skipped (an error if none remain). AP is the mean precision at each hit
    (`ap="sklearn"`: sklearn's average_precision_score, which differs only on ties); INP = number of
    matches / (1-based rank of the hardest match). `protocol="cuhk03"`: the single-gallery-shot CMC (one
    random gallery image per identity, averaged over `repeats` seeded draws); mAP/mINP use the full list.
    If no camera ids are known (all -1), nothing is removed by the same-camera rule.
    """
    if protocol not in CMC_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(CMC_PROTOCOLS)}")
    nq, ng = int(distmat.shape[0]), int(distmat.shape[1])
    q_camids = _as_numpy_1d(q_camids, "q_camids", nq)
    g_camids = _as_numpy_1d(g_camids, "g_camids", ng)
    cross_camera = resolve_camera_rule(q_camids, g_camids)
    stats = query_stats(distmat, q_pids, g_pids, q_camids, g_camids, cross_camera=cross_camera, ap=ap)
    report = report_from_stats(stats, max_rank)
    if protocol == "cuhk03":
        report.cmc = _single_shot_cmc(
            distmat,
            _as_numpy_1d(q_pids, "q_pids", nq),
            _as_numpy_1d(g_pids, "g_pids", ng),
            q_camids,
            g_camids,
            stats.query_index,
            cross_camera,
            max_rank,
            repeats,
            seed,
        )
    return report


def _single_shot_cmc(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    valid_queries: np.ndarray,
    cross_camera: bool,
    max_rank: int,
    repeats: int,
    seed: int,
) -> np.ndarray:
    """CUHK03 single-gallery-shot CMC: per query and repeat, keep one random gallery item per identity."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    cmc = np.zeros(max_rank, dtype=np.float64)
    for q in valid_queries:
        row = distmat[q]
        row = row.detach().cpu().numpy() if isinstance(row, torch.Tensor) else np.asarray(row)
        order = np.argsort(row, kind="stable")  # [G]
        if cross_camera:
            order = order[~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))]
        pids = g_pids[order]  # kept gallery pids in rank order
        # group the kept items by pid: positions (in rank order) of each pid's items, contiguous per pid
        by_pid = np.argsort(pids, kind="stable")
        uniq, start, size = np.unique(pids[by_pid], return_index=True, return_counts=True)
        pick = start[None, :] + (rng.random((repeats, uniq.shape[0])) * size[None, :]).astype(np.int64)
        chosen = np.sort(by_pid[np.minimum(pick, start + size - 1)], axis=1)  # [repeats, U] rank positions
        hit = pids[chosen] == q_pids[q]  # [repeats, U]: exactly one True per row
        first = hit.argmax(axis=1)  # [repeats] rank of the match among the sampled items
        cmc += np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1)[:max_rank].cumsum() / repeats
    return cmc / valid_queries.shape[0]


def recall_at_k(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    ks: tuple[int, ...] = FINE_GRAINED_KS,
    *,
    metric: str = "cosine",
    chunk_size: int = 1024,
) -> dict[int, float]:
    """Recall@K for fine-grained retrieval: every sample queries all the others (itself excluded by index)
    and counts as a hit when one of its K nearest neighbours has its label."""
    feats = as_float_tensor(features, "features")  # [N, D]
    n = feats.shape[0]
    lab = torch.as_tensor(_as_numpy_1d(labels, "labels", n), device=feats.device)  # [N]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    kmax = max(ks)
    if kmax > n - 1:
        raise ValueError(f"Recall@{kmax} needs more than {kmax} samples, got {n}")
    hits = {k: 0 for k in ks}
    for s, block in distance_blocks(feats, feats, metric, chunk_size=chunk_size):
        r = torch.arange(block.shape[0], device=block.device)
        block[r, s + r] = float("inf")  # the query itself, by index
        nn_idx = block.topk(kmax, dim=1, largest=False).indices  # [c, kmax]
        match = (lab[nn_idx] == lab[s + r].unsqueeze(1)).cumsum(1) > 0  # [c, kmax]: a hit within the first k
        for k in ks:
            hits[k] += int(match[:, k - 1].sum())
    return {k: hits[k] / n for k in ks}
