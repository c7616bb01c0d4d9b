"""GalleryIndex: a searchable gallery, vectors in an Exact or FAISS index plus per-entry metadata, that saves
to and loads from one verified folder (folder.py) with its metadata in SQLite (metadata.py)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.index.exact import ExactIndex, check_k, normalize_rows
from reidkit.index.faiss_index import FaissIndex, min_train_size, parse_factory
from reidkit.index.folder import (
    EXACT,
    METADATA,
    MODES,
    IndexIntegrityError,
    checksums,
    index_file,
    open_manifest,
    replacing,
    write_manifest,
)
from reidkit.index.metadata import Entry, read_metadata, write_metadata
from reidkit.index.rerank import reranked_search
from reidkit.types import Features, Record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchHit:
    """One ranked result: its rank (1-based), inner-product score and the entry's metadata."""

    rank: int
    score: float
    entry: Entry

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self.entry)
        d["captions"], d["members"] = list(self.entry.captions), list(self.entry.members)
        return {"rank": self.rank, "score": self.score, **d}


class GalleryIndex:
    """A searchable gallery: vectors in an `Index` (Exact or FAISS) plus per-entry metadata and a manifest.

    Instance mode keeps one vector per image; centroid mode one vector per identity: the mean of the
    L2-normalised image features, re-normalised.
    """

    def __init__(
        self,
        dim: int,
        *,
        mode: str = "instance",
        factory: str = "Flat",
        model_sha256: str | None = None,
        embedder_dim: int | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if embedder_dim is not None and embedder_dim != dim:
            raise ValueError(f"embedder_dim {embedder_dim} differs from the index dimension {dim}")
        if factory != EXACT:
            parse_factory(factory, dim)
        elif nprobe is not None or ef_search is not None:
            raise ValueError("nprobe / ef_search do not apply to the Exact factory")
        self.dim = int(dim)
        self.mode = mode
        self.model_sha256 = model_sha256
        self._nprobe, self._ef_search = nprobe, ef_search
        self._index: ExactIndex | FaissIndex | None = self._new_index(factory)
        self.factory = EXACT if factory == EXACT else self._index.factory  # type: ignore[union-attr]
        self._entries: list[Entry] = []
        self._by_path: dict[str, int] = {}  # image path -> entry id (centroid mode: the identity's entry)
        self._by_pid: dict[int, int] = {}  # centroid mode: pid -> entry id
        self._sums: list[np.ndarray] = []  # centroid mode: float64 [D] per entry
        self._lock = threading.Lock()  # guards the lazy centroid-index rebuild
        # the folder every absolute image path resolved under when the index was saved; the service serves
        # only files under it (None: not saved yet, or relative paths resolved against the server's root)
        self.gallery_root: str | None = None

    def _new_index(self, factory: str) -> ExactIndex | FaissIndex:
        if factory == EXACT:
            return ExactIndex(self.dim)
        return FaissIndex(self.dim, factory, nprobe=self._nprobe, ef_search=self._ef_search)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        features: Features,
        records: Sequence[Record],
        *,
        mode: str = "instance",
        factory: str = "Flat",
        model_sha256: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> GalleryIndex:
        """Index `features` whose `index` field points into `records` (a whole gallery at once)."""
        if features.feats.ndim != 2:
            raise ValueError(f"features.feats: expected shape [N, D], got {features.feats.shape}")
        gi = cls(
            int(features.feats.shape[1]),
            mode=mode,
            factory=factory,
            model_sha256=model_sha256,
            nprobe=nprobe,
            ef_search=ef_search,
        )
        gi.add(features, records)
        gi._ready_index()  # centroid mode builds (and trains) its index now, so bad settings fail here
        return gi

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def needs_training(self) -> bool:
        """True for an empty IVF instance index: `train` it on a sample before adding small batches."""
        idx = self._index
        return self.mode == "instance" and isinstance(idx, FaissIndex) and not idx.is_trained

    @property
    def min_train_size(self) -> int:
        return min_train_size(parse_factory(self.factory, self.dim)) if self.factory != EXACT else 0

    def train(self, vecs: np.ndarray) -> None:
        """Train an IVF index on a sample of gallery vectors (instance mode; centroid mode trains itself)."""
        if self.mode == "instance" and isinstance(self._index, FaissIndex):
            self._index.train(vecs)

    def _rows(self, features: Features, records: Sequence[Record]) -> tuple[np.ndarray, list[Record]]:
        """Validate features against records; return normalised vectors [N, D] and the record of each row."""
        feats = normalize_rows(features.feats, name="features.feats", dim=self.dim)  # [N, D]
        pos = np.asarray(features.index, dtype=np.int64)  # [N]
        if len(pos) and (pos.min() < 0 or pos.max() >= len(records)):
            raise ValueError(
                f"features.index must point into the {len(records)} records, got {pos.min()}..{pos.max()}"
            )
        recs = [records[int(p)] for p in pos]
        for i, rec in enumerate(recs):
            if int(features.pids[i]) != rec.pid:
                raise ValueError(
                    f"features row {i} has pid {int(features.pids[i])}, its record {rec.path!r} has {rec.pid}"
                )
        return feats, recs

    def add(self, features: Features, records: Sequence[Record]) -> list[int]:
        """Append a batch (features.index points into records); returns the ids of new or updated entries.

        Rows sharing an image path (one record per caption in text data) collapse to one image; a path
        already indexed only adds its new captions. Centroid mode adds each image to its identity's mean.
        """
        feats, recs = self._rows(features, records)  # [N, D]
        first: dict[str, int] = {}  # path -> first row in this batch
        captions: dict[str, list[str]] = {}
        for i, rec in enumerate(recs):
            known = self._by_path.get(rec.path)
            if known is not None and self._entries[known].pid != rec.pid:
                raise ValueError(
                    f"record {rec.path!r}: pid {rec.pid}, already indexed with pid {self._entries[known].pid}"
                )
            if rec.path in first and recs[first[rec.path]].pid != rec.pid:
                raise ValueError(
                    f"record {rec.path!r} appears with pids {recs[first[rec.path]].pid} and {rec.pid}"
                )
            first.setdefault(rec.path, i)
            if rec.text is not None:
                captions.setdefault(rec.path, []).append(rec.text)
        if self.mode == "instance":
            return self._add_instances(feats, recs, first, captions)
        return self._add_to_centroids(feats, recs, first)

    def _add_instances(
        self, feats: np.ndarray, recs: list[Record], first: dict[str, int], captions: dict[str, list[str]]
    ) -> list[int]:
        touched, new_rows, new_ids = [], [], []
        for path, row in first.items():
            caps = captions.get(path, [])
            eid = self._by_path.get(path)
            if eid is not None:  # already indexed: merge captions, keep its vector
                old = self._entries[eid]
                merged = old.captions + tuple(c for c in dict.fromkeys(caps) if c not in old.captions)
                if merged != old.captions:
                    self._entries[eid] = replace(old, captions=merged)
                    touched.append(eid)
                continue
            rec, eid = recs[row], len(self._entries)
            self._entries.append(
                Entry(eid, path, rec.pid, rec.camid, tuple(dict.fromkeys(caps)), rec.image_id)
            )
            self._by_path[path] = eid
            new_rows.append(row)
            new_ids.append(eid)
        if new_rows:
            assert self._index is not None
            self._index.add(feats[new_rows], np.asarray(new_ids, dtype=np.int64))
        logger.debug("added %d images, updated captions of %d", len(new_ids), len(touched))
        return new_ids + touched

    def _add_to_centroids(self, feats: np.ndarray, recs: list[Record], first: dict[str, int]) -> list[int]:
        by_pid: dict[int, list[int]] = {}
        for path, row in first.items():
            if path not in self._by_path:
                by_pid.setdefault(recs[row].pid, []).append(row)
        touched = []
        for pid, rows in by_pid.items():
            batch_sum = feats[rows].astype(np.float64).sum(axis=0)  # [D]
            paths = tuple(recs[r].path for r in rows)
            eid = self._by_pid.get(pid)
            if eid is None:
                # Representative image: the member closest to the identity's centroid when first indexed.
                rep = rows[int(np.argmax(feats[rows] @ batch_sum))]
                eid = len(self._entries)
                self._entries.append(Entry(eid, recs[rep].path, pid, -1, (), -1, paths))
                self._sums.append(batch_sum)
                self._by_pid[pid] = eid
            else:
                old = self._entries[eid]
                self._entries[eid] = replace(old, members=old.members + paths)
                self._sums[eid] = self._sums[eid] + batch_sum
            for p in paths:
                self._by_path[p] = eid
            touched.append(eid)
        if touched:
            self._index = None  # rebuilt from all centroids (and trained on them) on the next search / save
        return touched

    def centroids(self) -> np.ndarray:
        """Centroid mode: the L2-normalised identity vectors [P, D] in entry-id order."""
        if self.mode != "centroid":
            raise ValueError("centroids() is defined in centroid mode only")
        if not self._sums:
            return np.zeros((0, self.dim), dtype=np.float32)
        sums = np.stack(self._sums)  # [P, D] float64
        return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)

    def _ready_index(self) -> ExactIndex | FaissIndex:
        idx = self._index
        if idx is not None:
            return idx
        with self._lock:
            if self._index is None:
                fresh = self._new_index(self.factory)
                cents = self.centroids()  # [P, D]
                if len(cents):
                    fresh.add(cents, np.arange(len(cents), dtype=np.int64))
                self._index = fresh
            return self._index

    # -- searching --------------------------------------------------------------------------------------
    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k entries per query: (scores [Q, k], entry ids [Q, k]), -inf / -1 where fewer than k exist."""
        return self._ready_index().search(vecs, k)

    def query(self, vecs: np.ndarray, k: int, rerank: dict[str, Any] | None = None) -> list[list[SearchHit]]:
        """Like `search`, with each result's metadata; missing results are left out. `rerank` (k1, k2,
        lambda_value; {} = defaults): k-reciprocal re-ranking of the top `RERANK_POOL` candidates at query
        time (`index.rerank`; the order changes, the scores shown stay the cosine similarities)."""
        if rerank is None:
            scores, ids = self.search(vecs, check_k(k))  # [Q, k], [Q, k]
        else:
            scores, ids = reranked_search(
                self.search, self._ready_index().reconstruct, vecs, check_k(k), rerank
            )
        return [
            [
                SearchHit(r + 1, float(s), self._entries[int(i)])
                for r, (s, i) in enumerate(zip(srow, irow, strict=True))
                if i >= 0
            ]
            for srow, irow in zip(scores, ids, strict=True)
        ]

    def entry(self, eid: int) -> Entry:
        """Metadata of entry `eid`; raises KeyError for an unknown id."""
        if isinstance(eid, bool) or not 0 <= eid < len(self._entries):
            raise KeyError(f"no entry with id {eid} (the index has {len(self._entries)} entries)")
        return self._entries[eid]

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def resolved_root(self) -> str | None:
        """The common folder of every absolute image path, resolved now (symlinks followed)."""
        paths = [p for e in self._entries for p in (e.path, *e.members)]
        if not paths or not all(os.path.isabs(p) for p in paths):
            return None
        return os.path.commonpath([os.path.realpath(os.path.dirname(p)) for p in paths])

    # -- persistence ------------------------------------------------------------------------------------
    def _manifest_fields(self, files: dict[str, str]) -> dict[str, Any]:
        idx = self._ready_index()
        return {
            "dim": self.dim,
            "embedder_dim": self.dim,
            "mode": self.mode,
            "factory": self.factory,
            "count": len(self),
            "nprobe": idx.nprobe if isinstance(idx, FaissIndex) else None,
            "ef_search": idx.ef_search if isinstance(idx, FaissIndex) else None,
            "model_sha256": self.model_sha256,
            "gallery_root": self.gallery_root,
            "files": files,
        }

    def _write_sqlite(self, path: Path) -> None:
        write_metadata(
            path, self._entries, self._sums, mode=self.mode, dim=self.dim, model_sha256=self.model_sha256
        )

    def save(self, out_dir: str | Path) -> None:
        """Write the folder atomically: build it in a temp dir next to `out_dir`, then swap it into place."""
        out_dir = Path(out_dir)
        with replacing(out_dir) as tmp:
            index_name = index_file(self.factory)
            self._ready_index().save(tmp / index_name)
            self._write_sqlite(tmp / METADATA)
            files = checksums(tmp, (index_name, METADATA))
            self.gallery_root = self.resolved_root()  # recorded as the files resolve at save time
            write_manifest(tmp, self._manifest_fields(files))
        logger.info(
            "saved %s gallery index (%d entries, %s) to %s", self.mode, len(self), self.factory, out_dir
        )

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        expected_model_sha256: str | None = None,
        expected_dim: int | None = None,
        verify: bool = True,
    ) -> GalleryIndex:
        """Read a folder written by `save`, checking checksums (unless verify=False), model hash and dim."""
        index_dir = Path(index_dir)
        manifest = open_manifest(
            index_dir, expected_model_sha256=expected_model_sha256, expected_dim=expected_dim, verify=verify
        )
        factory = manifest["factory"]
        gi = cls(
            manifest["dim"], mode=manifest["mode"], factory=factory, model_sha256=manifest["model_sha256"]
        )
        index_path = index_dir / index_file(factory)
        try:
            gi._index = ExactIndex.load(index_path) if factory == EXACT else FaissIndex.load(index_path)
        except ValueError as e:
            raise IndexIntegrityError(str(e)) from e
        if isinstance(gi._index, FaissIndex):  # keep the stored search settings for centroid rebuilds
            gi.factory, gi._nprobe, gi._ef_search = gi._index.factory, gi._index.nprobe, gi._index.ef_search
        if gi._index.dim != gi.dim or gi.factory != factory:
            raise IndexIntegrityError(
                f"{index_path}: holds a {gi.factory} index of dim {gi._index.dim}, "
                f"but the manifest says {factory} / {gi.dim}"
            )
        gi._read_sqlite(index_dir / METADATA)
        # indexes saved before the root was recorded: the root of their stored paths as they resolve now
        gi.gallery_root = manifest["gallery_root"] if "gallery_root" in manifest else gi.resolved_root()
        if len(gi) != manifest["count"] or len(gi._index) != manifest["count"]:
            raise IndexIntegrityError(
                f"{index_dir}: manifest count {manifest['count']}, metadata rows {len(gi)}, "
                f"vectors {len(gi._index)}"
            )
        return gi

    def _read_sqlite(self, path: Path) -> None:
        self._entries, self._sums = read_metadata(
            path, mode=self.mode, dim=self.dim, model_sha256=self.model_sha256
        )
        for e in self._entries:
            if self.mode == "centroid":
                self._by_pid[e.pid] = e.id
                for p in e.members:
                    self._by_path[p] = e.id
            else:
                self._by_path[e.path] = e.id
