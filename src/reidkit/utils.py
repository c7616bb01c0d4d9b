"""Small shared helpers: seeding, atomic file writes, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so runs are reproducible."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write to a temp file in the same folder, then rename over `path`; nothing half-written is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`None`/"auto" picks CUDA when available, else CPU; anything else must name a torch device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a device; valid: {DEVICE_CHOICES}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here; use cpu or auto")
    return resolved


class RunLockedError(RuntimeError):
    """Another live process is writing into the same run folder."""


_HELD_LOCKS: dict[Path, int] = {}  # run folders this process holds -> nesting depth


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder (`folder/.lock`, holding the pid) while writing into it.

    A second process fails at once naming the folder and the holder. The OS drops the lock when its holder
    exits, so a crash leaves no stale lock (the file stays, unlocked). Re-entrant within one process.
    """
    import fcntl  # POSIX; imported here so the rest of this module imports anywhere

    folder = Path(folder).resolve()
    if folder in _HELD_LOCKS:
        _HELD_LOCKS[folder] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[folder] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"{folder}: another run is writing into this folder (pid {holder}); wait for it, stop it, "
                "or choose another train.out_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD_LOCKS[folder] = 1
        try:
            yield
        finally:
            del _HELD_LOCKS[folder]
    finally:
        os.close(fd)  # releases the flock
