"""Pure loss math for clustering-based unsupervised ReID: InfoNCE against cluster centroids (Cluster-Contrast,
Dai et al. 2021) and the label-preserving loss of Implicit Sample Extension (ISE, Zhang et al., CVPR 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(feats: torch.Tensor, labels: torch.Tensor, who: str, what: str = "feats") -> None:
    if feats.dim() != 2:
        raise ValueError(f"{who}: {what} must be [N, D], got shape {tuple(feats.shape)}")
    if labels.dim() != 1 or labels.shape[0] != feats.shape[0]:
        raise ValueError(
            f"{who}: labels of {what} must be [{feats.shape[0]}], got shape {tuple(labels.shape)}"
        )


def info_nce(
    feats: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """Mean over samples of -log softmax(f·c / tau)[label]: each feature against all cluster centroids.

    `feats` [B, D] and `centroids` [C, D] are expected L2-normalised; `labels` [B] index the centroids. The
    centroids are used as given: pass a detached copy so no gradient reaches the memory.
    """
    _check(feats, labels, "info_nce")
    if centroids.dim() != 2 or centroids.shape[1] != feats.shape[1]:
        raise ValueError(
            f"info_nce: centroids must be [C, {feats.shape[1]}], got shape {tuple(centroids.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= centroids.shape[0]):
        raise ValueError(
            f"info_nce: labels must lie in 0..{centroids.shape[0] - 1} (one per centroid), "
            f"got {int(labels.min())}..{int(labels.max())}"
        )
    logits = feats @ centroids.t() / temperature  # [B, C]
    return F.cross_entropy(logits, labels)


def label_preserving(
    feats: torch.Tensor,
    labels: torch.Tensor,
    supports: torch.Tensor,
    support_labels: torch.Tensor,
    temperature: float = 0.6,
) -> torch.Tensor:
    """ISE's label-preserving loss: each sample must be closer to its hardest same-label support than to the
    hardest support of every other label.

    For sample i with label y: p = min over supports s with label y of exp(f_i·s / tau), n_l = max over
    supports s with label l != y of exp(f_i·s / tau); loss_i = -log(p / (p + sum_l n_l)), averaged over the
    samples that have at least one same-label support. feats [B, D], supports [S, D], labels [B], [S].
    """
    _check(feats, labels, "label_preserving")
    _check(supports, support_labels, "label_preserving", "supports")
    if supports.shape[1] != feats.shape[1]:
        raise ValueError(f"label_preserving: supports have dim {supports.shape[1]}, feats {feats.shape[1]}")
    if temperature <= 0:
        raise ValueError(f"label_preserving: temperature must be > 0, got {temperature}")
    if supports.shape[0] == 0:
        return feats.sum() * 0.0
    sim = feats @ supports.t() / temperature  # [B, S]
    uniq, s_cls = torch.unique(support_labels, return_inverse=True)  # [L], [S]
    same = labels[:, None] == support_labels[None, :]  # [B, S]
    big = torch.finfo(sim.dtype).max
    pos = sim.masked_fill(~same, big).amin(dim=1)  # [B] hardest (least similar) same-label support
    # hardest (most similar) support of every other label: scatter-max over the support's label
    neg_in = sim.masked_fill(same, -big)  # [B, S]
    neg = torch.full((sim.shape[0], uniq.shape[0]), -big, dtype=sim.dtype, device=sim.device)  # [B, L]
    neg = neg.scatter_reduce(1, s_cls.expand_as(sim), neg_in, reduce="amax", include_self=True)
    own = uniq[None, :] == labels[:, None]  # [B, L]: the sample's own label is no negative
    neg = neg.masked_fill(own, float("-inf"))
    valid = same.any(dim=1)  # [B]
    if not bool(valid.any()):
        return feats.sum() * 0.0
    all_logits = torch.cat([pos[:, None], neg], dim=1)[valid]  # [V, 1 + L]
    loss = torch.logsumexp(all_logits, dim=1) - pos[valid]  # [V] = -log(p / (p + sum n))
    return loss.mean()
