"""Atomic checkpoints: model, optimizers, scheduler, RNG states, config, progress.

Checkpoints are files from elsewhere as often as not, so loading runs no code: `torch.load(weights_only=True)`
reads tensors and plain Python values only (records and RNG states are stored as such). A SHA-256 of the
content, stored inside, is checked on load, so a flipped byte is an error rather than changed weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.types import Record
from reidkit.utils import atomic_write

log = logging.getLogger(__name__)

_DIGEST_KEY = "sha256"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, damaged, tampered with, or not reidkit's."""


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states (CUDA too when present), as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _plain(random.getstate()),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively (weights_only loading reads lists, dicts, numbers, strings, tensors)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def records_to_plain(records: list[Record]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in records]


def records_from_plain(rows: list[dict[str, Any]], source: Path) -> list[Record]:
    try:
        return [Record(**row) for row in rows]
    except TypeError as e:
        raise CheckpointError(f"{source}: damaged record list in the checkpoint ({e})") from None


def content_digest(state: dict[str, Any]) -> str:
    """SHA-256 over every tensor (dtype, shape, bytes) and every plain value, in a fixed order."""
    h = hashlib.sha256()

    def visit(key: str, v: Any) -> None:
        h.update(key.encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                visit(f"{key}/{k}", v[k])
        elif isinstance(v, list | tuple):
            for i, item in enumerate(v):
                visit(f"{key}[{i}]", item)
        else:
            h.update(json.dumps(v, default=repr).encode())

    visit("", {k: v for k, v in state.items() if k != _DIGEST_KEY})
    return h.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save to a temp file, then rename: a killed write leaves the old file intact. Records become
    dicts; the content digest is stored inside."""
    state = dict(state)
    if "records" in state:
        state["records"] = records_to_plain(list(state["records"]))
    state[_DIGEST_KEY] = content_digest(state)
    with atomic_write(path, "wb") as fh:
        torch.save(state, fh)
    log.debug("saved checkpoint %s", path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a reidkit checkpoint without running code from it; verify its digest; records come back as
    `Record`s. Anything else (missing, empty, pickled objects, damaged, not reidkit's) is a CheckpointError
    naming the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused: it holds Python objects other than tensors and plain values, which could "
            f"run code when loaded ({first[:200]}); reidkit checkpoints hold none (one written before "
            "checkpoints carried a digest must be re-created)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a reidkit checkpoint (expected a dict with a 'model' entry)")
    stored = state.get(_DIGEST_KEY)
    if stored is None:
        raise CheckpointError(f"{path}: no content digest: not written by this reidkit version")
    if stored != content_digest(state):
        raise CheckpointError(f"{path}: content digest mismatch: the file is damaged or was modified")
    if "records" in state:
        state["records"] = records_from_plain(state["records"], path)
    return state
