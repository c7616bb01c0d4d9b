"""P x K identity sampling: P identities, K images each, per batch (ours: PKSampler; Cluster-Contrast's
rule: ClusterContrastSampler)."""

from __future__ import annotations

import abc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler


class _IdentityBatchSampler(Sampler[list[int]], abc.ABC):
    """What both batch samplers share: identities from pids (negative pids never sampled), the checks, the
    per-epoch seeding, passes chained to `num_batches`, resuming with `skip`. Subclasses define one pass
    (`_one_pass`) and a rank's share of a global batch (`_share`)."""

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        camids: Sequence[int] | None = None,
        rank: int = 0,
        world_size: int = 1,
        num_batches: int = 0,
    ) -> None:
        who = type(self).__name__
        if p < 1 or k < 1:
            raise ValueError(f"{who} needs p >= 1 and k >= 1, got p={p}, k={k}")
        self.pids = np.asarray(pids, dtype=np.int64)
        self.camids = None if camids is None else np.asarray(camids, dtype=np.int64)
        if self.camids is not None and self.camids.shape != self.pids.shape:
            raise ValueError(f"camids has {self.camids.shape[0]} entries, pids has {self.pids.shape[0]}")
        self.p, self.k, self.seed = p, k, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip, self.num_batches = 0, 0, num_batches
        groups: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(self.pids.tolist()):
            if pid >= 0:  # negative pids (outliers, junk) are never sampled
                groups[pid].append(i)
        self.groups = {pid: np.asarray(ix) for pid, ix in sorted(groups.items())}
        if len(self.groups) < p:
            raise ValueError(f"{who} needs at least p={p} identities, the data has {len(self.groups)}")
        if not 0 <= rank < world_size or p % world_size:
            raise ValueError(
                f"{who}: P={p} identities per batch must split evenly over world_size={world_size} "
                f"ranks (rank {rank})"
            )

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's order; the first `skip` batches are left out (resuming inside an epoch)."""
        self.epoch, self.skip = epoch, skip

    @abc.abstractmethod
    def _one_pass(self, rng: np.random.Generator) -> list:
        """The global batches of one pass over the identities."""

    @abc.abstractmethod
    def _share(self, batch: Any) -> list[int]:
        """This rank's indices of one global batch."""

    def _batches(self) -> list[list[int]]:
        """One epoch (this rank's share): passes over the identities until `num_batches` (0 = one pass)."""
        batches: list = []
        rnd = 0
        while True:
            one = self._one_pass(np.random.default_rng([self.seed, self.epoch, rnd]))
            if not one:
                raise ValueError(
                    f"{type(self).__name__}: a pass over {len(self.groups)} identities fills no batch of "
                    f"P x K = {self.p} x {self.k}"
                )
            batches += one
            rnd += 1
            if not self.num_batches or len(batches) >= self.num_batches:
                break
        if self.num_batches:
            batches = batches[: self.num_batches]
        return [self._share(b) for b in batches]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()[self.skip :]

    def __len__(self) -> int:
        return max(len(self._batches()) - self.skip, 0)


class PKSampler(_IdentityBatchSampler):
    """Yields batches of P identities x K images (a batch sampler for `DataLoader(batch_sampler=...)`).

    An identity with >= K images contributes disjoint chunks of K images (sampling without replacement);
    one with fewer than K contributes all its images once (no duplicates; the batch may be smaller than P*K:
    the losses mask, they don't need duplicates). With `camids`, each chunk prefers images from different
    cameras (round-robin over cameras). Call `set_epoch(e)` for a new, reproducible order each epoch.
    `num_batches` fixes the epoch length (more passes are chained when one pass is shorter).
    With `world_size > 1` (distributed training) every rank draws the same global schedule of P x K batches
    and takes its own P / world_size identities of each: the ranks' batches of one step together are exactly
    the batch a single process would train on.
    """

    def _chunks(self, idx: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        idx = rng.permutation(idx)
        if self.camids is not None:  # interleave cameras so each chunk spans as many cameras as possible
            cams = self.camids[idx]
            order = np.argsort(cams, kind="stable")
            rank_in_cam = np.empty(len(idx), dtype=np.int64)
            for c in np.unique(cams):
                members = np.flatnonzero(cams[order] == c)
                rank_in_cam[order[members]] = np.arange(len(members))
            idx = idx[np.lexsort((cams, rank_in_cam))]
        if len(idx) <= self.k:
            return [idx.tolist()]
        n = len(idx) // self.k
        return [idx[i * self.k : (i + 1) * self.k].tolist() for i in range(n)]

    def _share(self, batch: list[list[int]]) -> list[int]:
        """This rank's P / world_size identities of a global batch of P chunks."""
        share = self.p // self.world_size
        return [i for chunk in batch[self.rank * share : (self.rank + 1) * share] for i in chunk]

    def _one_pass(self, rng: np.random.Generator) -> list[list[list[int]]]:
        """Global batches, each a list of P chunks (one identity's images each)."""
        chunks = {pid: self._chunks(ix, rng) for pid, ix in self.groups.items()}
        batches: list[list[list[int]]] = []
        available = [pid for pid, c in chunks.items() if c]
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batches.append([chunks[available[j]].pop() for j in chosen])
            available = [pid for pid in available if chunks[pid]]
        return batches


class ClusterContrastSampler(_IdentityBatchSampler):
    """Cluster-Contrast's batch rule (its RandomMultipleGallerySampler; a batch sampler like PKSampler).

    One pass takes every identity (cluster) once, in random order, and writes K indices for it: a random
    anchor image, then K - 1 draws among the identity's images from *other cameras* than the anchor's (with
    `camids`), or, when it has none there (or without `camids`), among its other images. The K - 1 draws are
    without replacement only when there are at least K candidates (the reference's `>= K` test, so exactly
    K - 1 candidates are still drawn with replacement); an identity with a single image writes the anchor
    alone. The pass's index list is cut into consecutive batches of P * K and the incomplete tail is dropped
    (DataLoader drop_last), so the identities at the end of a pass sit that pass out. Passes are chained
    until `num_batches` (the reference's IterLoader restarts its loader when it runs out; 0 = one pass).
    Deterministic from (seed, epoch, pass); `set_epoch(e, skip)` as in PKSampler. With `world_size > 1`
    each rank takes its contiguous 1 / world_size of every global batch (P / world_size identities when
    every identity wrote K indices): the ranks' batches of one step together are the single-process batch.
    """

    def _identity(self, idx: np.ndarray, rng: np.random.Generator) -> list[int]:
        """The K indices one identity writes: anchor first, then K - 1 draws (see the class docstring)."""
        a = int(rng.integers(len(idx)))
        pool = np.delete(idx, a)
        if self.camids is not None:
            other_cam = idx[self.camids[idx] != self.camids[idx[a]]]
            if len(other_cam):
                pool = other_cam
        if not len(pool):  # a single image
            return [int(idx[a])]
        draws = rng.choice(pool, size=self.k - 1, replace=len(pool) < self.k)
        return [int(idx[a]), *draws.tolist()]

    def _one_pass(self, rng: np.random.Generator) -> list[list[int]]:
        """Global batches of P * K indices: every identity once, in random order, cut into batches."""
        ids = list(self.groups.values())
        flat = [i for g in rng.permutation(len(ids)) for i in self._identity(ids[g], rng)]
        size = self.p * self.k
        return [flat[s : s + size] for s in range(0, len(flat) - size + 1, size)]

    def _share(self, batch: list[int]) -> list[int]:
        """This rank's contiguous 1 / world_size of a global batch of P * K indices."""
        share = self.p * self.k // self.world_size
        return batch[self.rank * share : (self.rank + 1) * share]
