"""ExactIndex: brute-force inner product over L2-normalised vectors, the oracle every other index is tested
against."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from reidkit.utils import atomic_write

logger = logging.getLogger(__name__)

_FORMAT = "reidkit.exact_index"
_VERSION = 1
# Query rows per chunk are chosen so one score block stays near this many float32 cells (~128 MiB).
_BLOCK_CELLS = 1 << 25


def normalize_rows(vecs: np.ndarray, *, name: str = "vecs", dim: int | None = None) -> np.ndarray:
    """Check `vecs` is a finite 2-D float array (of width `dim`) and return a float32 L2-normalised copy."""
    arr = np.asarray(vecs)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [N, D], got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name}: expected dimension {dim}, got {arr.shape[1]}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.float32, copy=True)  # [N, D]
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # [N, 1]
    if out.shape[0] and (norms <= 1e-12).any():
        bad = int(np.flatnonzero(norms[:, 0] <= 1e-12)[0])
        raise ValueError(f"{name}: row {bad} has zero norm and cannot be L2-normalised")
    out /= norms
    return out


def check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """Check `ids` is a 1-D array of `n` non-negative integers and return it as int64 (-1 means 'missing')."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"ids: expected a 1-D array of {n} integers, got shape {arr.shape}")
    if n and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids: expected integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n and arr.min() < 0:
        raise ValueError("ids: must be >= 0 (-1 is reserved for 'no result')")
    return arr


def check_k(k: int) -> int:
    """Check the number of neighbours asked for is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    return int(k)


class ExactIndex:
    """Brute-force cosine search: stores L2-normalised float32 vectors and ranks by inner product."""

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim}")
        self.dim = int(dim)
        self._vecs = np.zeros((0, self.dim), dtype=np.float32)  # [N, D]
        self._ids = np.zeros((0,), dtype=np.int64)  # [N]

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, vecs: np.ndarray, ids: np.ndarray) -> None:
        """Append vectors (L2-normalised here) with their integer ids."""
        v = normalize_rows(vecs, name="vecs", dim=self.dim)  # [M, D]
        i = check_ids(ids, v.shape[0])  # [M]
        self._vecs = np.concatenate([self._vecs, v], axis=0)
        self._ids = np.concatenate([self._ids, i], axis=0)

    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores [Q, k] float32, ids [Q, k] int64), -inf / -1 past the end."""
        k = check_k(k)
        q = normalize_rows(vecs, name="queries", dim=self.dim)  # [Q, D]
        nq, n = q.shape[0], len(self)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)  # [Q, k]
        ids = np.full((nq, k), -1, dtype=np.int64)  # [Q, k]
        if n == 0 or nq == 0:
            return scores, ids
        kk = min(k, n)
        step = max(1, _BLOCK_CELLS // n)
        for s in range(0, nq, step):
            sim = q[s : s + step] @ self._vecs.T  # [q, N]
            if kk < n:
                part = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]  # [q, kk], unordered
            else:
                part = np.broadcast_to(np.arange(n), (sim.shape[0], n))
            part_scores = np.take_along_axis(sim, part, axis=1)  # [q, kk]
            # Sort by descending score, ties by insertion position, so the result is deterministic.
            order = np.lexsort((part, -part_scores), axis=1)  # [q, kk]
            top = np.take_along_axis(part, order, axis=1)  # [q, kk]
            scores[s : s + step, :kk] = np.take_along_axis(sim, top, axis=1)
            ids[s : s + step, :kk] = self._ids[top]
        return scores, ids

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors [M, D] of `ids` (each must be in the index)."""
        pos = {int(i): n for n, i in enumerate(self._ids)}
        missing = [int(i) for i in ids if int(i) not in pos]
        if missing:
            raise KeyError(f"ids not in the index: {missing[:5]}")
        return self._vecs[[pos[int(i)] for i in ids]]

    def reconstruct_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored (normalised) vectors [N, D] and their ids [N]."""
        return self._vecs.copy(), self._ids.copy()

    def save(self, path: Path) -> None:
        """Write vectors and ids to one .npz file atomically."""
        with atomic_write(path) as fh:
            np.savez(
                fh,
                format=np.array(_FORMAT),
                version=np.array(_VERSION),
                vecs=self._vecs,
                ids=self._ids,
            )

    @classmethod
    def load(cls, path: Path) -> ExactIndex:
        """Read an index written by `save`; a wrong or damaged file raises naming the file."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                fmt, version = str(z["format"]), int(z["version"])
                vecs, ids = z["vecs"], z["ids"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a readable ExactIndex file ({e})") from e
        if fmt != _FORMAT or version != _VERSION:
            raise ValueError(f"{path}: expected {_FORMAT} version {_VERSION}, found {fmt} version {version}")
        if vecs.ndim != 2 or ids.shape != (vecs.shape[0],):
            raise ValueError(f"{path}: vecs {vecs.shape} and ids {ids.shape} do not match")
        index = cls(vecs.shape[1])
        index._vecs = vecs.astype(np.float32, copy=False)
        index._ids = ids.astype(np.int64, copy=False)
        return index
