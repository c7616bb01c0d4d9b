"""Multi-process training with torch.distributed, launched by torchrun: the process group from torchrun's
environment, rank-0-only side effects, and the collectives that keep per-rank state identical. With one
process (no torchrun) every helper is a no-op and nothing is initialised."""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from reidkit.config import DIST_BACKENDS
from reidkit.types import Features, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank, number of processes, rank on its node, backend."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "none"


def launched_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device, backend: str = "auto", timeout_min: int = 60) -> tuple[World, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). The backend
    is nccl on CUDA and gloo on CPU unless given; each rank takes the CUDA device of its local rank. Without
    torchrun (WORLD_SIZE unset or 1) nothing happens. Returns the world and this rank's device."""
    if backend not in DIST_BACKENDS:
        raise ValueError(f"train.dist_backend: unknown backend {backend!r}; valid: {list(DIST_BACKENDS)}")
    size = launched_world_size()
    if size <= 1:
        return World(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    chosen = backend if backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if chosen == "nccl" and device.type != "cuda":
        raise ValueError("train.dist_backend=nccl needs CUDA devices; use gloo on the CPU")
    if not dist.is_initialized():
        dist.init_process_group(chosen, timeout=datetime.timedelta(minutes=timeout_min))
    return World(rank, size, local_rank, chosen), device


def shutdown() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside a multi-process run."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes checkpoints, metrics and logs."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` of rank `src` on every rank (picklable values: labels, records, numbers)."""
    if not active():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` [n_r, ...] of every rank along dim 0, in rank order; ranks may hold different n_r.
    No gradient flows through (for state updates: memories, queues)."""
    if not active():
        return t
    sizes = torch.tensor([t.shape[0]], device=t.device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world_size())]
    dist.all_gather(all_sizes, sizes)
    n = [int(s.item()) for s in all_sizes]
    padded = t.new_zeros((max(n), *t.shape[1:]))
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in n]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:k] for p, k in zip(parts, n, strict=True)])


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """The mean of each number over the ranks (losses for logging); every rank must pass the same keys."""
    if not active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / world_size() for k, v in zip(keys, t.tolist(), strict=True)}


def sharded(
    extract: Callable[[Sequence[Record]], Features],
) -> Callable[[Sequence[Record]], Features]:
    """`extract` with the records split into contiguous shards, one per rank, and the features gathered: every
    rank gets the features of all records, in record order (`index` = position in `records`)."""

    def run(records: Sequence[Record]) -> Features:
        if not active():
            return extract(records)
        bounds = np.linspace(0, len(records), world_size() + 1).astype(int)
        lo, hi = int(bounds[rank()]), int(bounds[rank() + 1])
        mine = extract(records[lo:hi])
        order = np.argsort(mine.index, kind="stable")
        ids = None if mine.image_ids is None else mine.image_ids[order]
        parts = all_gather_object((mine.feats[order], mine.pids[order], mine.camids[order], ids))
        feats, pids, camids = (np.concatenate([p[i] for p in parts]) for i in range(3))
        image_ids = None if ids is None else np.concatenate([p[3] for p in parts])
        return Features(feats, pids, camids, np.arange(len(records)), image_ids)

    return run
