"""The per-entry metadata of a gallery index (`Entry`) and its SQLite table, meta.sqlite, kept apart from the
vectors so that paths, captions and centroid sums are stored in one queryable, checksummed file."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reidkit.index.folder import FORMAT, FORMAT_VERSION, IndexIntegrityError

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


def write_metadata(
    path: Path,
    entries: Sequence[Entry],
    sums: Sequence[np.ndarray],
    *,
    mode: str,
    dim: int,
    model_sha256: str | None,
) -> None:
    """Write a new meta.sqlite of `entries` (centroid mode: with each identity's float64 [D] feature sum)
    and the info table, then fsync it."""
    centroid = mode == "centroid"
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
                    json.dumps(list(e.members)) if centroid else None,
                    sums[e.id].astype("<f8").tobytes() if centroid else None,
                )
                for e in entries
            ),
        )
        info = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "mode": mode,
            "dim": str(dim),
            "model_sha256": model_sha256 or "",
        }
        con.executemany("INSERT INTO info VALUES (?, ?)", info.items())
        con.commit()
    finally:
        con.close()
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def read_metadata(
    path: Path, *, mode: str, dim: int, model_sha256: str | None
) -> tuple[list[Entry], list[np.ndarray]]:
    """Read meta.sqlite (read-only) after checking its info table against the manifest's mode, dim and
    model: the entries in id order and, in centroid mode, their float64 [D] feature sums."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            info = dict(con.execute("SELECT key, value FROM info").fetchall())
            rows = con.execute(
                "SELECT id, path, pid, camid, captions, image_id, members, feat_sum FROM entries ORDER BY id"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise IndexIntegrityError(f"{path}: unreadable metadata database ({e})") from e
    if info.get("mode") != mode or info.get("dim") != str(dim):
        raise IndexIntegrityError(f"{path}: info table {info} disagrees with the manifest")
    if (info.get("model_sha256") or None) != model_sha256:
        raise IndexIntegrityError(f"{path}: model_sha256 differs from the manifest")
    entries: list[Entry] = []
    sums: list[np.ndarray] = []
    for eid, (rid, rpath, pid, camid, caps, image_id, members, feat_sum) in enumerate(rows):
        if rid != eid:
            raise IndexIntegrityError(f"{path}: entry ids are not 0..N-1 (found {rid} at position {eid})")
        mem = tuple(json.loads(members)) if members is not None else ()
        entries.append(Entry(rid, rpath, pid, camid, tuple(json.loads(caps)), image_id, mem))
        if mode == "centroid":
            if feat_sum is None or len(feat_sum) != 8 * dim:
                raise IndexIntegrityError(f"{path}: entry {rid} lacks its centroid feature sum")
            sums.append(np.frombuffer(feat_sum, dtype="<f8").astype(np.float64))
    return entries, sums
