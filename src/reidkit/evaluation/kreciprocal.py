"""k-nearest-neighbour graphs and sparse k-reciprocal encodings (shared by re-ranking and Jaccard).

Everything here keeps O(N·k) memory: the kNN search streams [chunk, N] distance blocks, neighbour sets
are padded [N, k] arrays, encodings are CSR matrices, and the Jaccard sums are accumulated a few rows
at a time. Definitions follow Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding" (CVPR 2017).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

log = logging.getLogger(__name__)

# Work budgets (entries) for the chunked steps; they bound the temporaries, not the results.
_PAIR_CHUNK = 1 << 13
_EXPAND_ROWS = 2048
_JACCARD_WORK = 1 << 21
_JACCARD_DENSE = 1 << 22
_BITMAP_ENTRIES = 1 << 24


def half_k(k1: int) -> int:
    """Neighbours used for the candidates' own reciprocal sets: round(k1 / 2) + 1, rounding half to even
    exactly like `int(np.around(k1 / 2)) + 1` in the reference code."""
    return int(np.around(k1 / 2)) + 1


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for every (s, n): the gather positions of ragged segments."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    seg_start = np.cumsum(lengths) - lengths  # [S] where each segment begins in the output
    offsets = np.repeat(np.asarray(starts, dtype=np.int64) - seg_start, lengths)  # [total]
    return offsets + np.arange(total, dtype=np.int64)


def knn_self(
    x: torch.Tensor,
    k: int,
    *,
    with_max: bool = False,
    chunk_size: int = 1024,
    capture: tuple[int, int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The k nearest rows of x for every row of x by squared Euclidean distance (nearest first, the row
    itself included), and optionally each row's largest distance, streaming [chunk, N] blocks.

    `capture=(rows, col0, out)` also copies the distances d[:rows, col0:] into `out` (e.g. query x gallery
    when the queries come first). Returns (indices [N, k] int64, max distance [N] float64 or None).
    """
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the number of samples), got {k}")
    sq = (x * x).sum(1)  # [N]
    xt = x.T
    idx = np.empty((n, k), dtype=np.int64)
    row_max = np.empty(n, dtype=np.float64) if with_max else None
    for s in range(0, n, chunk_size):
        xs = x[s : s + chunk_size]  # [c, D]
        c = xs.shape[0]
        # d - ||x_i||^2: the row constant changes neither the order nor the argmax, so it is added only
        # where real distances are needed (one full pass fewer over the block)
        part = torch.addmm(sq.unsqueeze(0), xs, xt, alpha=-2.0)  # [c, N]
        idx[s : s + c] = part.topk(k, dim=1, largest=False, sorted=True).indices.cpu().numpy()
        if row_max is not None:
            row_max[s : s + c] = (part.amax(1) + sq[s : s + c]).clamp_min(0.0).double().cpu().numpy()
        if capture is not None and s < capture[0]:
            rows, col0, out = capture
            r = min(rows, s + c) - s
            d = part[:r, col0:].add_(sq[s : s + r].unsqueeze(1)).clamp_min_(0.0)  # [r, N - col0]
            out[s : s + r] = d.cpu().numpy()
    return idx, row_max


def reciprocal_mask(fwd: np.ndarray, bwd: np.ndarray, self_ids: np.ndarray | None = None) -> np.ndarray:
    """mask[i, r] = True when row i is itself among the neighbours of its r-th neighbour.

    fwd [N, k]: neighbours of each row (indices into bwd's rows); bwd [M, k']: neighbours of those, as
    ids comparable with self_ids [N] (default arange(N): one graph, fwd == bwd).
    """
    n = fwd.shape[0]
    ids = np.arange(n) if self_ids is None else self_ids
    mask = np.empty(fwd.shape, dtype=bool)
    for s in range(0, n, _EXPAND_ROWS):
        back = bwd[fwd[s : s + _EXPAND_ROWS]]  # [c, k, k']
        mask[s : s + _EXPAND_ROWS] = (back == ids[s : s + _EXPAND_ROWS, None, None]).any(-1)
    return mask


def expanded_sets(
    cand: np.ndarray, cand_mask: np.ndarray, half: np.ndarray, half_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The k-reciprocal sets with the 2/3 expansion rule, as (rows, cols) pairs sorted by row then col.

    cand [N, kf] / cand_mask: each row's k-reciprocal set R(i) (padded); half [M, kh] / half_mask: the
    half-size reciprocal set R(c) of every candidate c. R(c) is merged into R(i) when
    |R(c) ∩ R(i)| > 2/3 |R(c)| (the same float comparison as the reference code).
    """
    n, kf = cand.shape
    m = half.shape[0]
    step = max(1, min(_EXPAND_ROWS, _BITMAP_ENTRIES // max(m, 1)))
    bitmap = np.zeros((step, m), dtype=bool)  # row r marks R(s + r); set and cleared per chunk
    rows_out, cols_out = [], []
    for s in range(0, n, step):
        c_idx = cand[s : s + step]  # [c, kf]
        c_msk = cand_mask[s : s + step]  # [c, kf]
        c = c_idx.shape[0]
        mr, mc = np.nonzero(c_msk)
        bitmap[mr, c_idx[mr, mc]] = True
        h = half[c_idx]  # [c, kf, kh] each candidate's half set
        h_msk = half_mask[c_idx] & c_msk[:, :, None]  # [c, kf, kh]
        member = bitmap[np.arange(c)[:, None, None], h]  # [c, kf, kh]: element of R(i)?
        bitmap[mr, c_idx[mr, mc]] = False
        inter = (member & h_msk).sum(-1)  # [c, kf]
        size = h_msk.sum(-1)  # [c, kf]
        accept = c_msk & (inter > 2.0 / 3.0 * size)  # [c, kf]
        allv = np.concatenate([c_idx, h.reshape(c, -1)], axis=1)  # [c, kf + kf*kh]
        allm = np.concatenate([c_msk, (h_msk & accept[:, :, None]).reshape(c, -1)], axis=1)
        allv = np.where(allm, allv, m)  # invalid -> sentinel m, sorts last
        allv.sort(axis=1)
        keep = allv < m
        keep[:, 1:] &= allv[:, 1:] != allv[:, :-1]  # first of each run of equal values
        r, col = np.nonzero(keep)
        rows_out.append(r + s)
        cols_out.append(allv[r, col])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def pair_sqdist(x: torch.Tensor, y: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance ||x[rows] - y[cols]||^2 for each pair, in chunks (same formula as the
    kNN blocks, so the two agree to rounding)."""
    out = np.empty(rows.shape[0], dtype=np.float64)
    if x.device.type == "cpu" and y.device.type == "cpu":
        xa, ya = x.numpy(), y.numpy()
        sq_x, sq_y = np.einsum("ij,ij->i", xa, xa), np.einsum("ij,ij->i", ya, ya)
        for s in range(0, rows.shape[0], _PAIR_CHUNK):
            r, c = rows[s : s + _PAIR_CHUNK], cols[s : s + _PAIR_CHUNK]
            d = sq_x[r] + sq_y[c] - 2.0 * np.einsum("ij,ij->i", xa[r], ya[c])  # [p]
            out[s : s + _PAIR_CHUNK] = np.maximum(d, 0.0)
        return out
    sq_x, sq_y = (x * x).sum(1), (y * y).sum(1)
    for s in range(0, rows.shape[0], _PAIR_CHUNK):
        r = torch.as_tensor(rows[s : s + _PAIR_CHUNK], device=x.device)
        c = torch.as_tensor(cols[s : s + _PAIR_CHUNK], device=x.device)
        d = sq_x[r] + sq_y[c] - 2.0 * (x[r] * y[c]).sum(1)  # [p]
        out[s : s + _PAIR_CHUNK] = d.clamp_min(0.0).double().cpu().numpy()
    return out


def softmax_encoding(
    rows: np.ndarray, cols: np.ndarray, dist: np.ndarray, shape: tuple[int, int], dtype: type = np.float32
) -> sp.csr_matrix:
    """V[i, j] = exp(-dist_ij) / sum_j' exp(-dist_ij') over each row's pairs (rows sorted); CSR [N, M].

    Rows without pairs stay empty. The row minimum is subtracted first, which changes nothing but
    keeps exp() from underflowing on large distances.
    """
    n = shape[0]
    counts = np.bincount(rows, minlength=n)
    if rows.shape[0]:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        lo = np.repeat(np.minimum.reduceat(dist, starts), np.diff(np.r_[starts, rows.shape[0]]))
        w = np.exp(-(dist - lo))
        w /= np.bincount(rows, weights=w, minlength=n)[rows]
    else:
        w = dist
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return sp.csr_matrix((w.astype(dtype), cols.astype(np.int64), indptr), shape=shape)


def query_expand(v: sp.csr_matrix, nbr: np.ndarray) -> sp.csr_matrix:
    """Local query expansion: row i becomes the mean of the rows nbr[i, :] of v (nbr [N, k2])."""
    n, k2 = nbr.shape
    a = sp.csr_matrix(
        (np.full(n * k2, 1.0 / k2, dtype=v.dtype), nbr.ravel(), np.arange(0, n * k2 + 1, k2)),
        shape=(n, v.shape[0]),
    )
    out = (a @ v).tocsr()
    out.sort_indices()
    return out


def min_sum_blocks(
    a: sp.csr_matrix, b: sp.csr_matrix, *, upper: bool = False
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (row_start, col_start, S) with S[i, j] = sum_e min(a[row_start+i, e], b[col_start+j, e]) as
    dense float64 blocks [c, Nb - col_start].

    Walks, for each row of a, the b-rows sharing each of its non-zero columns (an inverted index), so
    the work is the number of (i, e, j) triples with shared support, never Na x Nb x M. `upper` (a and
    b the same matrix, S symmetric): only j >= i is computed (half the work); S is 0 below the diagonal.
    """
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"encodings have {a.shape[1]} and {b.shape[1]} columns")
    if upper and a.shape[0] != b.shape[0]:
        raise ValueError("upper=True needs a and b to be the same square problem")
    nb = b.shape[0]
    bc = b.tocsc()
    bc.sort_indices()
    col_len = np.diff(bc.indptr)  # [M] b-rows per column
    a_rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr))  # [nnz(a)]
    start = bc.indptr[a.indices].astype(np.int64)  # [nnz(a)] where each column's b-rows begin
    if upper:
        # first b-row >= i inside each column: search the (column, row) keys, sorted in CSC order
        ckey = np.repeat(np.arange(bc.shape[1], dtype=np.int64), col_len) * nb + bc.indices
        start = np.searchsorted(ckey, a.indices.astype(np.int64) * nb + a_rows)
    lens = bc.indptr[a.indices + 1] - start  # [nnz(a)] b-rows to visit per (row, column)
    work = np.bincount(a_rows, weights=lens, minlength=a.shape[0])  # [Na]
    cum = np.r_[0.0, np.cumsum(work)]
    s = 0
    while s < a.shape[0]:
        col0 = s if upper else 0
        width = nb - col0
        e = min(a.shape[0], s + max(1, _JACCARD_DENSE // max(width, 1)))
        e = max(s + 1, min(e, int(np.searchsorted(cum, cum[s] + _JACCARD_WORK, side="right")) - 1))
        p0, p1 = a.indptr[s], a.indptr[e]
        seg = lens[p0:p1]
        pos = ragged_arange(start[p0:p1], seg)  # [W] positions in bc
        key = np.repeat(a_rows[p0:p1] - s, seg) * width + (bc.indices[pos] - col0)  # [W] local (row, col)
        mins = np.minimum(np.repeat(a.data[p0:p1], seg), bc.data[pos])  # [W]
        acc = np.bincount(key, weights=mins, minlength=(e - s) * width)
        yield s, col0, acc.reshape(e - s, width)
        s = e
