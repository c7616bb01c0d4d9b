"""ClusterMemory: one L2-normalised centroid per pseudo-identity, a checkpointed buffer (Cluster-Contrast).

Reset each epoch to the cluster means, read through a detached copy by the losses, and updated with momentum
under no_grad after the optimiser step: c <- normalize(m * c + (1 - m) * f). "sequential" (the
Cluster-Contrast reference's default, `cm`) applies that step once per batch sample, in batch order; "hard"
(the reference's `cm_hard` option, used by the ISE Market-1501 recipe) once per cluster with its least similar
batch feature; "mean" (ours) once per cluster with the mean of its batch features.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

UPDATES = ("hard", "mean", "sequential")


def _check_update(memory: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, who: str) -> None:
    if feats.dim() != 2 or feats.shape[1] != memory.shape[1]:
        raise ValueError(f"{who}: feats must be [B, {memory.shape[1]}], got {tuple(feats.shape)}")
    if labels.dim() != 1 or labels.shape[0] != feats.shape[0]:
        raise ValueError(f"{who}: labels must be [{feats.shape[0]}], got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= memory.shape[0]):
        raise ValueError(
            f"{who}: labels must lie in 0..{memory.shape[0] - 1} (the memory's clusters), "
            f"got {int(labels.min())}..{int(labels.max())}"
        )


def batch_targets(
    memory: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, how: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature each cluster present in the batch moves towards: (cluster ids [U], targets [U, D]).

    "mean": the mean of the cluster's batch features; "hard": the batch feature least similar (cosine) to
    the cluster's current centroid (first one on ties). memory [C, D], feats [B, D], labels [B].
    """
    if how not in ("hard", "mean"):
        raise ValueError(f"batch targets {how!r} unknown; valid: ['hard', 'mean']")
    ids, inv = torch.unique(labels, return_inverse=True)  # [U], [B]
    if how == "mean":
        sums = torch.zeros(ids.shape[0], feats.shape[1], dtype=feats.dtype, device=feats.device)
        sums.index_add_(0, inv, feats)  # [U, D]
        counts = torch.bincount(inv, minlength=ids.shape[0]).to(feats.dtype)  # [U]
        return ids, sums / counts[:, None]
    sim = (feats * memory[labels].to(feats.dtype)).sum(1)  # [B] cosine to the own centroid
    low = torch.full((ids.shape[0],), float("inf"), dtype=sim.dtype, device=sim.device)
    low = low.scatter_reduce(0, inv, sim, reduce="amin")  # [U]
    pos = torch.arange(feats.shape[0], device=feats.device)
    cand = torch.where(sim == low[inv], pos, feats.shape[0])  # [B]: index where it is the cluster's minimum
    first = torch.full((ids.shape[0],), feats.shape[0], dtype=pos.dtype, device=pos.device)
    first = first.scatter_reduce(0, inv, cand, reduce="amin")  # [U]
    return ids, feats[first]


def occurrence(labels: torch.Tensor) -> torch.Tensor:
    """[B]: how many earlier batch rows carry the same label (0 for a cluster's first row, 1 its second)."""
    order = torch.argsort(labels, stable=True)  # rows grouped by label, batch order kept inside a group
    sorted_labels = labels[order]
    pos = torch.arange(labels.shape[0], device=labels.device)
    new_group = torch.ones_like(sorted_labels, dtype=torch.bool)
    new_group[1:] = sorted_labels[1:] != sorted_labels[:-1]
    # the sorted position where each row's group starts
    group_start = torch.cummax(torch.where(new_group, pos, 0), dim=0).values
    out = torch.empty_like(pos)
    out[order] = pos - group_start
    return out


@torch.no_grad()
def sequential_update(
    memory: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, momentum: float
) -> None:
    """In place, Cluster-Contrast's `cm` update: for each row i in batch order,
    memory[y_i] <- normalize(m * memory[y_i] + (1 - m) * feats[i]).

    Clusters are independent, so round r updates every cluster with its r-th row at once: exactly the
    per-row loop, in max-rows-per-cluster vectorised rounds. memory [C, D], feats [B, D], labels [B].
    """
    rank = occurrence(labels)  # [B]
    for r in range(int(rank.max()) + 1 if labels.numel() else 0):
        rows = torch.nonzero(rank == r).squeeze(1)  # one row per cluster
        ys = labels[rows]
        new = momentum * memory[ys] + (1.0 - momentum) * feats[rows]  # [n, D]
        memory[ys] = F.normalize(new, dim=1)


class ClusterMemory(nn.Module):
    """Centroids [C, D] as a persistent buffer whose size C changes every epoch (loading resizes it)."""

    features: torch.Tensor

    def __init__(self, dim: int, momentum: float = 0.2, update: str = "hard") -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"ClusterMemory: dim must be > 0, got {dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"ClusterMemory: momentum must lie in [0, 1), got {momentum}")
        if update not in UPDATES:
            raise ValueError(f"ClusterMemory: update {update!r} unknown; valid: {list(UPDATES)}")
        self.dim, self.momentum, self.update_kind = dim, momentum, update
        self.register_buffer("features", torch.zeros(0, dim))

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def reset(self, centroids: torch.Tensor) -> None:
        """Replace the memory by `centroids` [C, D], L2-normalised (in the memory's dtype, on its device)."""
        if centroids.dim() != 2 or centroids.shape[1] != self.dim:
            raise ValueError(
                f"ClusterMemory.reset: centroids must be [C, {self.dim}], got {tuple(centroids.shape)}"
            )
        self.features = F.normalize(centroids.detach().to(self.features), dim=1)  # keeps dtype and device

    def centroids(self) -> torch.Tensor:
        """A detached copy of the centroids [C, D], safe to use in a loss while the memory is updated."""
        return self.features.detach().clone()

    def logits(self, feats: torch.Tensor, temperature: float) -> torch.Tensor:
        """Similarities of feats [B, D] to every centroid, divided by the temperature: [B, C]."""
        return feats @ self.centroids().to(feats.dtype).t() / temperature

    @torch.no_grad()
    def update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Momentum update of the clusters present in the batch (feats [B, D] L2-normalised, labels [B])."""
        _check_update(self.features, feats, labels, "ClusterMemory.update")
        if feats.shape[0] == 0:
            return
        feats = feats.detach().to(self.features.dtype)
        if self.update_kind == "sequential":
            sequential_update(self.features, feats, labels, self.momentum)
            return
        ids, target = batch_targets(self.features, feats, labels, self.update_kind)  # [U], [U, D]
        new = self.momentum * self.features[ids] + (1.0 - self.momentum) * target  # [U, D]
        self.features[ids] = F.normalize(new, dim=1)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The number of clusters differs between epochs: take the checkpoint's size before copying.
        saved = state_dict.get(prefix + "features")
        if isinstance(saved, torch.Tensor):
            if saved.dim() != 2 or saved.shape[1] != self.dim:
                error_msgs.append(
                    f"{prefix}features: expected [C, {self.dim}] cluster centroids, got {tuple(saved.shape)}"
                )
                return
            self.features = torch.empty(saved.shape, dtype=self.features.dtype, device=self.features.device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
