"""The on-disk gallery index folder: its format, a self-checking manifest with every file's checksum, and
the atomic swap that replaces a folder, so that no reader ever sees a half-written or edited index."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reidkit.utils import atomic_write, sha256_file

# Folder format (version 1):
#
#   DIR/index.faiss   the FaissIndex (or index.npz for the "Exact" factory)
#   DIR/meta.sqlite   table `entries` (id, path, pid, camid, captions, image_id, members, feat_sum)
#                     and table `info` (key, value): format version, mode, dim, model_sha256
#   DIR/manifest.json format + version, dim, embedder_dim, mode, factory, nprobe, ef_search, count,
#                     model_sha256, sha256 of every other file, and its own checksum (manifest_sha256),
#                     written in one canonical byte form so that any edited byte is detected
#
# A save writes the whole folder into a temp dir next to DIR and swaps it in with two renames; if a crash
# falls between them, the previous version is left as `.DIR.old-*` (load says so).
FORMAT = "reidkit.gallery_index"
FORMAT_VERSION = 1
MODES = ("instance", "centroid")
EXACT = "Exact"
MANIFEST = "manifest.json"
METADATA = "meta.sqlite"


class IndexIntegrityError(ValueError):
    """A gallery index folder is missing files, corrupted, or inconsistent with its manifest."""


class ModelMismatchError(ValueError):
    """A gallery index was built with a different model checkpoint or embedding dimension."""


def index_file(factory: str) -> str:
    """The name of the vector index file in a folder of this factory."""
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


def checksums(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """The sha256 of each named file in `folder`, for the manifest's `files` field."""
    return {name: sha256_file(folder / name) for name in names}


def write_manifest(folder: Path, fields: dict[str, Any]) -> None:
    """Write FOLDER/manifest.json: the format stamp, `fields`, the creation time and its own checksum."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **fields,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    body["manifest_sha256"] = hashlib.sha256(_render_manifest(body)).hexdigest()
    with atomic_write(folder / MANIFEST) as fh:
        fh.write(_render_manifest(body))


@contextlib.contextmanager
def replacing(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temp folder next to `out_dir`; once the block has filled it, swap it in for `out_dir`.

    A block that raises leaves `out_dir` untouched and the temp folder removed. A non-empty `out_dir` that is
    not a gallery index folder is refused (ValueError) before anything is written.
    """
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise ValueError(f"{out_dir}: exists and is not a gallery index folder; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
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
    needed = {index_file(body["factory"]), METADATA}
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


def open_manifest(
    index_dir: Path,
    *,
    expected_model_sha256: str | None = None,
    expected_dim: int | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """The checked manifest of a folder about to be loaded: refuses another model or dimension
    (ModelMismatchError) and, when `verify`, any file whose checksum differs (IndexIntegrityError)."""
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
    return manifest


def describe_dir(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of an index folder plus its size on disk, without loading vectors (for CLIs / health)."""
    index_dir = Path(index_dir)
    body = read_manifest(index_dir)
    body["bytes_on_disk"] = sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file())
    return body
