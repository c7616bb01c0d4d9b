"""GalleryIndex: a vector index paired with per-entry metadata, saved as one verified folder.

Folder format (version 1)::

    DIR/index.faiss   the FaissIndex (or index.npz for the "Exact" factory)
    DIR/meta.sqlite   table `entries` (id, path, pid, camid, captions, image_id, members, feat_sum)
                      and table `info` (key, value): format version, mode, dim, model_sha256
    DIR/manifest.json format + version, dim, embedder_dim, mode, factory, nprobe, ef_search, count,
                      model_sha256, sha256 of every other file, and its own checksum (manifest_sha256),
                      written in one canonical byte form so that any edited byte is detected

A save writes the whole folder into a temp dir next to DIR and swaps it in with two renames; if a crash
falls between them, the previous version is left as `.DIR.old-*` (load says so).

Instance mode keeps one vector per image; centroid mode one vector per identity: the mean of the
L2-normalised image features, re-normalised. `IndexBuilder` makes a build resumable by persisting batches
as shards next to the output folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.index.exact import ExactIndex, check_k, normalize_rows
from reidkit.index.faiss_index import FaissIndex, min_train_size, parse_factory
from reidkit.types import Features, Record
from reidkit.utils import atomic_write, sha256_file

logger = logging.getLogger(__name__)

FORMAT = "reidkit.gallery_index"
FORMAT_VERSION = 1
MODES = ("instance", "centroid")
EXACT = "Exact"
MANIFEST = "manifest.json"
METADATA = "meta.sqlite"

_SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,      -- image file (centroid mode: the identity's representative image)
    pid INTEGER NOT NULL,
    camid INTEGER NOT NULL,  -- -1 in centroid mode
    captions TEXT NOT NULL,  -- JSON list of captions of this image (text data), else []
    image_id INTEGER NOT NULL,
    members TEXT,            -- centroid mode: JSON list of the identity's image paths
    feat_sum BLOB            -- centroid mode: float64 [D] sum of the members' L2-normalised features
);
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class IndexIntegrityError(ValueError):
    """A gallery index folder is missing files, corrupted, or inconsistent with its manifest."""


class ModelMismatchError(ValueError):
    """A gallery index was built with a different model checkpoint or embedding dimension."""


@dataclass(frozen=True)
class Entry:
    """Metadata of one index entry: an image (instance mode) or an identity (centroid mode)."""

    id: int
    path: str
    pid: int
    camid: int = -1
    captions: tuple[str, ...] = ()
    image_id: int = -1
    members: tuple[str, ...] = ()


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


def _index_file(factory: str) -> str:
    return "index.npz" if factory == EXACT else "index.faiss"


def _render_manifest(body: dict[str, Any]) -> bytes:
    """The canonical bytes of a manifest: sorted keys, 2-space indent, ASCII, trailing newline."""
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("ascii")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GalleryIndex:
    """A searchable gallery: vectors in an `Index` (Exact or FAISS) plus per-entry metadata and a manifest."""

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

    def query(self, vecs: np.ndarray, k: int) -> list[list[SearchHit]]:
        """Like `search`, with each result's metadata; missing results are left out."""
        scores, ids = self.search(vecs, check_k(k))  # [Q, k], [Q, k]
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
    def _manifest_body(self, files: dict[str, str]) -> dict[str, Any]:
        idx = self._ready_index()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
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
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _write_sqlite(self, path: Path) -> None:
        con = sqlite3.connect(path)
        try:
            con.executescript(_SCHEMA)
            con.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        e.id,
                        e.path,
                        e.pid,
                        e.camid,
                        json.dumps(list(e.captions)),
                        e.image_id,
                        json.dumps(list(e.members)) if self.mode == "centroid" else None,
                        self._sums[e.id].astype("<f8").tobytes() if self.mode == "centroid" else None,
                    )
                    for e in self._entries
                ),
            )
            info = {
                "format": FORMAT,
                "format_version": str(FORMAT_VERSION),
                "mode": self.mode,
                "dim": str(self.dim),
                "model_sha256": self.model_sha256 or "",
            }
            con.executemany("INSERT INTO info VALUES (?, ?)", info.items())
            con.commit()
        finally:
            con.close()
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())

    def save(self, out_dir: str | Path) -> None:
        """Write the folder atomically: build it in a temp dir next to `out_dir`, then swap it into place."""
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise ValueError(f"{out_dir}: exists and is not a gallery index folder; refusing to replace it")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            index_name = _index_file(self.factory)
            self._ready_index().save(tmp / index_name)
            self._write_sqlite(tmp / METADATA)
            files = {name: sha256_file(tmp / name) for name in (index_name, METADATA)}
            self.gallery_root = self.resolved_root()  # recorded as the files resolve at save time
            body = self._manifest_body(files)
            body["manifest_sha256"] = hashlib.sha256(_render_manifest(body)).hexdigest()
            with atomic_write(tmp / MANIFEST) as fh:
                fh.write(_render_manifest(body))
            _fsync_dir(tmp)
            if out_dir.exists():
                old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(out_dir, old)
                os.rename(tmp, out_dir)
                shutil.rmtree(old)
            else:
                os.rename(tmp, out_dir)
            _fsync_dir(out_dir.parent)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
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
        manifest = read_manifest(index_dir)
        if expected_dim is not None and expected_dim != manifest["dim"]:
            raise ModelMismatchError(
                f"{index_dir / MANIFEST}: index dimension is {manifest['dim']}, but the embedder produces "
                f"{expected_dim}; rebuild the index with this model"
            )
        if expected_model_sha256 is not None and expected_model_sha256 != manifest["model_sha256"]:
            raise ModelMismatchError(
                f"{index_dir / MANIFEST}: index was built with model sha256 {manifest['model_sha256']}, "
                f"but the given checkpoint has sha256 {expected_model_sha256}; rebuild the index"
            )
        if verify:
            verify_files(index_dir, manifest)
        factory = manifest["factory"]
        gi = cls(
            manifest["dim"], mode=manifest["mode"], factory=factory, model_sha256=manifest["model_sha256"]
        )
        index_path = index_dir / _index_file(factory)
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
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
            try:
                info = dict(con.execute("SELECT key, value FROM info").fetchall())
                rows = con.execute(
                    "SELECT id, path, pid, camid, captions, image_id, members, feat_sum "
                    "FROM entries ORDER BY id"
                ).fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise IndexIntegrityError(f"{path}: unreadable metadata database ({e})") from e
        if info.get("mode") != self.mode or info.get("dim") != str(self.dim):
            raise IndexIntegrityError(f"{path}: info table {info} disagrees with the manifest")
        if (info.get("model_sha256") or None) != self.model_sha256:
            raise IndexIntegrityError(f"{path}: model_sha256 differs from the manifest")
        for eid, (rid, rpath, pid, camid, caps, image_id, members, feat_sum) in enumerate(rows):
            if rid != eid:
                raise IndexIntegrityError(f"{path}: entry ids are not 0..N-1 (found {rid} at position {eid})")
            mem = tuple(json.loads(members)) if members is not None else ()
            self._entries.append(Entry(rid, rpath, pid, camid, tuple(json.loads(caps)), image_id, mem))
            if self.mode == "centroid":
                if feat_sum is None or len(feat_sum) != 8 * self.dim:
                    raise IndexIntegrityError(f"{path}: entry {rid} lacks its centroid feature sum")
                self._sums.append(np.frombuffer(feat_sum, dtype="<f8").astype(np.float64))
                self._by_pid[pid] = rid
                for p in mem:
                    self._by_path[p] = rid
            else:
                self._by_path[rpath] = rid


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """Parse and self-check DIR/manifest.json: canonical bytes, its own checksum, known format and fields."""
    path = index_dir / MANIFEST
    if not path.is_file():
        stale = sorted(index_dir.parent.glob(f".{index_dir.name}.old-*"))
        hint = f"; an interrupted save left {stale[0]}: rename it to {index_dir}" if stale else ""
        raise FileNotFoundError(f"{path}: not found — {index_dir} is not a gallery index folder{hint}")
    raw = path.read_bytes()
    try:
        body = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexIntegrityError(f"{path}: corrupted (not valid ASCII JSON: {e})") from e
    if not isinstance(body, dict) or not isinstance(body.get("manifest_sha256"), str):
        raise IndexIntegrityError(f"{path}: corrupted (expected an object with a manifest_sha256 field)")
    claimed = body.pop("manifest_sha256")
    if hashlib.sha256(_render_manifest(body)).hexdigest() != claimed:
        raise IndexIntegrityError(f"{path}: checksum mismatch (the manifest was modified or corrupted)")
    if raw != _render_manifest({**body, "manifest_sha256": claimed}):
        raise IndexIntegrityError(f"{path}: bytes differ from the canonical form (the manifest was modified)")
    if body.get("format") != FORMAT:
        raise IndexIntegrityError(f"{path}: format is {body.get('format')!r}, expected {FORMAT!r}")
    if body.get("format_version") != FORMAT_VERSION:
        raise IndexIntegrityError(
            f"{path}: format_version {body.get('format_version')!r}; this reidkit reads {FORMAT_VERSION}"
        )
    if not isinstance(body.get("gallery_root", ""), str | None):
        got = body["gallery_root"]
        raise IndexIntegrityError(f"{path}: field 'gallery_root' should be a path, got {got!r}")
    expected_types = {"dim": int, "mode": str, "factory": str, "count": int, "files": dict}
    for key, typ in expected_types.items():
        if not isinstance(body.get(key), typ):
            raise IndexIntegrityError(
                f"{path}: field {key!r} should be a {typ.__name__}, got {body.get(key)!r}"
            )
    if body["mode"] not in MODES:
        raise IndexIntegrityError(f"{path}: mode {body['mode']!r} is not one of {MODES}")
    needed = {_index_file(body["factory"]), METADATA}
    if set(body["files"]) != needed:
        raise IndexIntegrityError(f"{path}: files {sorted(body['files'])}, expected {sorted(needed)}")
    return body


def verify_files(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Compare each file's sha256 with the manifest; raise naming the first file that differs."""
    for name, expected in sorted(manifest["files"].items()):
        path = index_dir / name
        if not path.is_file():
            raise IndexIntegrityError(f"{path}: missing (listed in {MANIFEST})")
        actual = sha256_file(path)
        if actual != expected:
            raise IndexIntegrityError(
                f"{path}: checksum mismatch (sha256 {actual}, manifest says {expected}); file is corrupted"
            )


@dataclass
class _BuildConfig:
    dim: int
    mode: str
    factory: str
    model_sha256: str | None
    nprobe: int | None
    ef_search: int | None
    dataset: dict[str, Any] | None  # what is being indexed (see `dataset_identity`)


def dataset_identity(records: Sequence[Record], **source: Any) -> dict[str, Any]:
    """Identify a gallery being indexed: its source (root, format, reader options), record count and a
    SHA-256 of the record list, so a resumed build never mixes shards of two datasets."""
    digest = hashlib.sha256(json.dumps([asdict(r) for r in records], sort_keys=True).encode()).hexdigest()
    return {**source, "count": len(records), "records_sha256": digest}


def _bad_shard(path: Path, e: Exception) -> IndexIntegrityError:
    return IndexIntegrityError(
        f"{path}: unreadable build shard ({type(e).__name__}: {e}); delete it to redo that batch"
    )


class IndexBuilder:
    """Resumable gallery build: each `add`ed batch is persisted as a shard in `.<out>.partial/` next to the
    output; after an interruption a new builder with the same settings skips what is done (`pending`)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        dim: int,
        mode: str = "instance",
        factory: str = "Flat",
        model_sha256: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        train_size: int = 100_000,
        seed: int = 0,
        dataset: dict[str, Any] | None = None,
        fresh: bool = False,
    ) -> None:
        """`dataset` identifies what is indexed (`dataset_identity`); an unfinished build of anything else
        is refused, or discarded when `fresh`."""
        self.out_dir = Path(out_dir)
        self.work_dir = self.out_dir.parent / f".{self.out_dir.name}.partial"
        # Fails early on a bad mode / factory / parameter combination.
        GalleryIndex(
            dim, mode=mode, factory=factory, model_sha256=model_sha256, nprobe=nprobe, ef_search=ef_search
        )
        self.config = _BuildConfig(dim, mode, factory, model_sha256, nprobe, ef_search, dataset)
        self.train_size, self.seed = train_size, seed
        cfg_path = self.work_dir / "build.json"
        if fresh and self.work_dir.exists():
            logger.info("discarding the unfinished build in %s (fresh start asked)", self.work_dir)
            shutil.rmtree(self.work_dir)
        if cfg_path.is_file():
            saved = json.loads(cfg_path.read_text())
            diff = {k: (saved.get(k), v) for k, v in asdict(self.config).items() if saved.get(k) != v}
            if diff:
                what = "of another dataset" if "dataset" in diff else "with other settings"
                raise ValueError(
                    f"{cfg_path}: an unfinished build {what} exists ({diff} as (saved, given)); "
                    f"start fresh (`index build --fresh`) or delete {self.work_dir}"
                )
        else:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(cfg_path, "w") as fh:
                json.dump(asdict(self.config), fh, indent=2, sort_keys=True)
        self._done: set[Record] = set()
        self._shards = sorted(self.work_dir.glob("shard-*.npz"))
        for shard in self._shards:
            self._done.update(self._read_shard(shard)[1])
        if self._shards:
            logger.info("resuming build in %s: %d records done", self.work_dir, len(self._done))

    @property
    def num_done(self) -> int:
        return len(self._done)

    def pending(self, records: Iterable[Record]) -> list[Record]:
        """The records not yet in a persisted shard, in their given order."""
        return [r for r in records if r not in self._done]

    def add(self, features: Features, records: Sequence[Record]) -> None:
        """Persist one batch (features.index points into records) as a shard, atomically."""
        if features.feats.ndim != 2 or features.feats.shape[1] != self.config.dim:
            raise ValueError(
                f"features.feats: expected shape [N, {self.config.dim}], got {features.feats.shape}"
            )
        pos = np.asarray(features.index, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(records)):
            raise ValueError(f"features.index must point into the {len(records)} records")
        rows = [records[int(p)] for p in pos]
        payload = json.dumps([asdict(r) for r in rows])
        shard = self.work_dir / f"shard-{len(self._shards):06d}.npz"
        with atomic_write(shard) as fh:
            np.savez(
                fh,
                feats=np.asarray(features.feats, dtype=np.float32),
                pids=np.asarray(features.pids, dtype=np.int64),
                camids=np.asarray(features.camids, dtype=np.int64),
                records=np.array(payload),
            )
        self._shards.append(shard)
        self._done.update(rows)

    @staticmethod
    def _shard_arrays(path: Path, *keys: str) -> dict[str, np.ndarray]:
        """Arrays of one shard; a damaged shard is an IndexIntegrityError naming it."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in keys}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise _bad_shard(path, e) from None

    @classmethod
    def _read_shard(cls, path: Path) -> tuple[Features, list[Record]]:
        a = cls._shard_arrays(path, "feats", "pids", "camids", "records")
        try:
            recs = [Record(**d) for d in json.loads(str(a["records"]))]
        except (ValueError, TypeError) as e:
            raise _bad_shard(path, e) from None
        n = len(recs)
        return Features(a["feats"], a["pids"], a["camids"], np.arange(n, dtype=np.int64)), recs

    def finish(self) -> GalleryIndex:
        """Build the GalleryIndex from all shards (IVF trains on a sample first), save it, drop the shards."""
        c = self.config
        gi = GalleryIndex(
            c.dim,
            mode=c.mode,
            factory=c.factory,
            model_sha256=c.model_sha256,
            nprobe=c.nprobe,
            ef_search=c.ef_search,
        )
        if gi.needs_training:
            gi.train(self._training_sample())
        for shard in self._shards:
            gi.add(*self._read_shard(shard))
        gi.save(self.out_dir)
        shutil.rmtree(self.work_dir)
        return gi

    def _training_sample(self) -> np.ndarray:
        """Up to `train_size` vectors drawn uniformly (seeded) from all shards."""
        sizes = []
        for shard in self._shards:
            sizes.append(int(self._shard_arrays(shard, "pids")["pids"].shape[0]))
        total = sum(sizes)
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(total, size=min(total, self.train_size), replace=False))
        out, start = [], 0
        for shard, n in zip(self._shards, sizes, strict=True):
            local = pick[(pick >= start) & (pick < start + n)] - start
            if len(local):
                out.append(self._shard_arrays(shard, "feats")["feats"][local])
            start += n
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), np.float32)


def describe_dir(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of an index folder plus its size on disk, without loading vectors (for CLIs / health)."""
    index_dir = Path(index_dir)
    body = read_manifest(index_dir)
    body["bytes_on_disk"] = sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file())
    return body
