"""FaissIndex: cosine search with FAISS (Flat, IVF-Flat, IVF-PQ or HNSW) behind the `Index` protocol."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import faiss
import numpy as np

from reidkit.index.exact import check_ids, check_k, normalize_rows
from reidkit.utils import atomic_write

logger = logging.getLogger(__name__)

# The factory strings we accept (all built with METRIC_INNER_PRODUCT, wrapped in IndexIDMap2 for ids).
FACTORY_FORMS = ("Flat", "IVF{nlist},Flat", "IVF{nlist},PQ{m}", "IVF{nlist},PQ{m}x{nbits}", "HNSW{M}")
_FACTORY_RE = re.compile(
    r"^(?:Flat|IVF(?P<nlist>\d+),(?:Flat|PQ(?P<m>\d+)(?:x(?P<nbits>\d+))?)|HNSW(?P<M>\d+))$"
)
DEFAULT_EF_SEARCH = 64
# faiss stores -FLT_MAX as the score of a missing neighbour under inner product.
_MISSING = -np.finfo(np.float32).max


def parse_factory(factory: str, dim: int) -> dict[str, int]:
    """Validate a factory string for vectors of width `dim`; return its numeric parts (nlist, m, nbits, M)."""
    match = _FACTORY_RE.match(factory.replace(" ", ""))
    if match is None:
        raise ValueError(f"factory: unknown index type {factory!r}; valid forms: {', '.join(FACTORY_FORMS)}")
    parts = {key: int(val) for key, val in match.groupdict().items() if val is not None}
    if parts.get("nlist", 1) < 1 or parts.get("M", 2) < 2 or parts.get("m", 1) < 1:
        raise ValueError(f"factory {factory!r}: nlist and m must be >= 1 and HNSW M >= 2")
    if "m" in parts:
        parts.setdefault("nbits", 8)
        if dim % parts["m"]:
            raise ValueError(f"factory {factory!r}: PQ m={parts['m']} must divide the dimension {dim}")
        if not 1 <= parts["nbits"] <= 16:
            raise ValueError(f"factory {factory!r}: PQ nbits must be in 1..16, got {parts['nbits']}")
    return parts


def default_nprobe(nlist: int) -> int:
    """IVF lists visited per query unless told otherwise: 1/16 of the lists, at least 8 (faiss's own is 1)."""
    return min(nlist, max(8, nlist // 16))


def min_train_size(parts: dict[str, int]) -> int:
    """How many vectors training needs at least: one per IVF list and 2**nbits for PQ codebooks."""
    need = parts.get("nlist", 0)
    if "m" in parts:
        need = max(need, 2 ** parts["nbits"])
    return need


def _describe(index: faiss.Index) -> str:
    """The canonical factory string of a (downcast) faiss index built by this module."""
    if isinstance(index, faiss.IndexHNSWFlat):
        return f"HNSW{index.hnsw.nb_neighbors(1)}"
    if isinstance(index, faiss.IndexIVFPQ):
        nbits = int(index.pq.nbits)
        return f"IVF{index.nlist},PQ{index.pq.M}" + ("" if nbits == 8 else f"x{nbits}")
    if isinstance(index, faiss.IndexIVFFlat):
        return f"IVF{index.nlist},Flat"
    if isinstance(index, faiss.IndexFlat):
        return "Flat"
    raise ValueError(f"unsupported faiss index type {type(index).__name__}; valid forms: {FACTORY_FORMS}")


class FaissIndex:
    """FAISS inner-product index over L2-normalised vectors with integer ids; IVF trains on first add."""

    def __init__(
        self, dim: int, factory: str = "Flat", *, nprobe: int | None = None, ef_search: int | None = None
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim}")
        self.dim = int(dim)
        self._parts = parse_factory(factory, self.dim)
        inner = faiss.index_factory(self.dim, factory.replace(" ", ""), faiss.METRIC_INNER_PRODUCT)
        if isinstance(inner, faiss.IndexIVFPQ):
            # Polysemous training only serves Hamming pre-filtering, which we never use; it costs minutes.
            inner.do_polysemous_training = False
        self._index = faiss.IndexIDMap2(inner)
        self.factory = _describe(faiss.downcast_index(inner))
        if nprobe is None and "nlist" in self._parts:
            nprobe = default_nprobe(self._parts["nlist"])
        self._set_params(nprobe, ef_search if ef_search is not None else DEFAULT_EF_SEARCH)

    # -- parameters -------------------------------------------------------------------------------------
    def _inner(self) -> faiss.Index:
        return faiss.downcast_index(self._index.index)

    def _set_params(self, nprobe: int | None, ef_search: int | None) -> None:
        inner = self._inner()
        if nprobe is not None:
            if not isinstance(inner, faiss.IndexIVF):
                raise ValueError(f"nprobe applies to IVF indexes only, not {self.factory}")
            if not 1 <= nprobe <= inner.nlist:
                raise ValueError(f"nprobe: expected 1..{inner.nlist}, got {nprobe}")
            inner.nprobe = int(nprobe)
        if ef_search is not None and isinstance(inner, faiss.IndexHNSW):
            if ef_search < 1:
                raise ValueError(f"ef_search: expected a positive integer, got {ef_search}")
            inner.hnsw.efSearch = int(ef_search)

    @property
    def nprobe(self) -> int | None:
        """IVF lists visited per query (None for non-IVF indexes)."""
        inner = self._inner()
        return int(inner.nprobe) if isinstance(inner, faiss.IndexIVF) else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._set_params(value, None)

    @property
    def ef_search(self) -> int | None:
        """HNSW search beam width (None for non-HNSW indexes); raised to k per query when k is larger."""
        inner = self._inner()
        return int(inner.hnsw.efSearch) if isinstance(inner, faiss.IndexHNSW) else None

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self.ef_search is None:
            raise ValueError(f"ef_search applies to HNSW indexes only, not {self.factory}")
        self._set_params(None, value)

    # -- Index protocol ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def min_train_size(self) -> int:
        """Fewest vectors `train` accepts for this factory (0 when no training is needed)."""
        return min_train_size(self._parts)

    def train(self, vecs: np.ndarray) -> None:
        """Train IVF centroids / PQ codebooks on a sample (L2-normalised here); a no-op for Flat and HNSW."""
        if self.is_trained:
            return
        v = normalize_rows(vecs, name="training vecs", dim=self.dim)  # [M, D]
        need = self.min_train_size
        if v.shape[0] < need:
            raise ValueError(
                f"factory {self.factory}: training needs at least {need} vectors, got {v.shape[0]}; "
                "add more vectors at once or choose a smaller nlist / nbits"
            )
        logger.info("training %s on %d vectors", self.factory, v.shape[0])
        self._index.train(v)

    def add(self, vecs: np.ndarray, ids: np.ndarray) -> None:
        """Append vectors (L2-normalised here) with integer ids; an untrained IVF index trains on them."""
        v = normalize_rows(vecs, name="vecs", dim=self.dim)  # [M, D]
        i = check_ids(ids, v.shape[0])  # [M]
        if v.shape[0] == 0:
            return
        if not self.is_trained:
            self.train(v)
        self._index.add_with_ids(v, i)

    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores [Q, k] float32, ids [Q, k] int64), -inf / -1 where missing."""
        k = check_k(k)
        q = normalize_rows(vecs, name="queries", dim=self.dim)  # [Q, D]
        if q.shape[0] == 0 or len(self) == 0:
            return np.full((q.shape[0], k), -np.inf, np.float32), np.full((q.shape[0], k), -1, np.int64)
        inner = self._inner()
        params = None
        # Per-call parameters keep concurrent searches thread-safe (the index itself is never mutated).
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(efSearch=max(int(inner.hnsw.efSearch), k))
        elif isinstance(inner, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(nprobe=int(inner.nprobe))
        scores, ids = self._index.search(q, k, params=params)  # [Q, k], [Q, k]
        missing = ids < 0
        scores[missing | (scores <= _MISSING)] = -np.inf
        ids[missing] = -1
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors [M, D] of `ids` (approximate for PQ codes); IVF builds its id map once."""
        inner = self._inner()
        if isinstance(inner, faiss.IndexIVF) and inner.direct_map.type == faiss.DirectMap.NoMap:
            inner.make_direct_map()
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for n, i in enumerate(ids):
            out[n] = self._index.reconstruct(int(i))
        return out

    def save(self, path: Path) -> None:
        """Write the faiss index (readable by `faiss.read_index`) to `path` atomically."""
        data = faiss.serialize_index(self._index)  # uint8 [bytes]
        with atomic_write(path) as fh:
            fh.write(data.tobytes())

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        """Read an index written by `save`; factory, nprobe and efSearch come back from the file."""
        path = Path(path)
        try:
            raw = np.fromfile(path, dtype=np.uint8)
            index = faiss.deserialize_index(raw)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"{path}: not a readable faiss index ({e})") from e
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{path}: expected a faiss IndexIDMap2 written by FaissIndex.save")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"{path}: expected an inner-product index, got metric {index.metric_type}")
        inner = faiss.downcast_index(index.index)
        obj = cls.__new__(cls)
        obj.dim = int(index.d)
        obj.factory = _describe(inner)
        obj._parts = parse_factory(obj.factory, obj.dim)
        obj._index = index
        return obj
