"""Pure loss math on tensors: pairwise distances, batch-hard triplet, label-smoothed CE, center loss and the
centroid triplet loss (CTL, Wieczorek et al., ICONIP 2021; reference and per-image forms). Vectorised: masks
and matmuls, no batch loops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12  # distances are sqrt(clamp(d2, _EPS)): finite gradients where two points coincide


def _check_feats_labels(feats: torch.Tensor, labels: torch.Tensor, who: str) -> None:
    if feats.dim() != 2:
        raise ValueError(f"{who}: feats must be [B, D], got shape {tuple(feats.shape)}")
    if labels.dim() != 1 or labels.shape[0] != feats.shape[0]:
        raise ValueError(
            f"{who}: labels must be [B] with B={feats.shape[0]}, got shape {tuple(labels.shape)}"
        )


def _zero_loss(feats: torch.Tensor) -> torch.Tensor:
    """A 0 that stays in the graph (backward gives zero gradients) for batches without any valid term."""
    return feats.sum() * 0.0


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distances between the rows of x [N, D] and y [M, D] -> [N, M], via |x|^2 + |y|^2 - 2 x.y.

    Squared distances are clamped at 0 (rounding); plain distances take sqrt(max(d2, 1e-12)), so the
    gradient stays finite for coincident points (the distance there reads 1e-6 instead of 0).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"pairwise_euclidean: expected x [N, D] and y [M, D], got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * (x @ y.t())  # [N, M]
    d2 = d2.clamp(min=0.0)
    return d2 if squared else d2.clamp(min=_EPS).sqrt()


def _ranking(d_pos: torch.Tensor, d_neg: torch.Tensor, margin: float, soft_margin: bool) -> torch.Tensor:
    """Per-anchor margin ranking: relu(d_pos - d_neg + margin), or softplus(d_pos - d_neg) when soft."""
    if soft_margin:
        return F.softplus(d_pos - d_neg)
    return F.relu(d_pos - d_neg + margin)


def batch_hard_triplet(
    feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.5, soft_margin: bool = False
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) on Euclidean distances, averaged over anchors.

    For anchor i: d_ap = max over j != i with y_j = y_i of d(i, j) (hardest positive), d_an = min over
    y_j != y_i of d(i, j) (hardest negative); loss_i = max(0, d_ap - d_an + margin), or with soft_margin
    log(1 + exp(d_ap - d_an)). Anchors with no other image of their id, or no negative, are left out; a batch
    with no valid anchor gives 0. feats [B, D], labels [B] -> scalar.
    """
    _check_feats_labels(feats, labels, "batch_hard_triplet")
    dist = pairwise_euclidean(feats, feats)  # [B, B]
    same = labels.unsqueeze(0) == labels.unsqueeze(1)  # [B, B]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    valid = pos.any(1) & neg.any(1)  # [B]
    if not valid.any():
        return _zero_loss(feats)
    d_ap = dist.masked_fill(~pos, float("-inf")).amax(1)  # [B]
    d_an = dist.masked_fill(~neg, float("inf")).amin(1)  # [B]
    return _ranking(d_ap[valid], d_an[valid], margin, soft_margin).mean()


def cross_entropy_label_smooth(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Label-smoothed cross-entropy (Szegedy et al. 2016; BoT's CrossEntropyLabelSmooth), batch mean:
    q = (1 - epsilon) * onehot(y) + epsilon / C, loss = mean_i sum_c -q_ic log softmax(logits_i)_c.
    logits [B, C], labels [B] long -> scalar."""
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy_label_smooth: expected logits [B, C] and labels [B], got {tuple(logits.shape)}, "
            f"{tuple(labels.shape)}"
        )
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"cross_entropy_label_smooth: epsilon must be in [0, 1), got {epsilon}")
    return F.cross_entropy(logits, labels, label_smoothing=epsilon)


def cross_entropy_smooth_others(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Label-smoothed cross-entropy with the mass spread over the wrong classes only (fast-reid's
    `cross_entropy_loss`, used by FRPT's reference code): q = 1 - epsilon on the label and epsilon / (C - 1)
    on each other class, loss = mean_i sum_c -q_ic log softmax(logits_i)_c. The uniform form above gives the
    label 1 - epsilon + epsilon / C instead. logits [B, C] (C >= 2), labels [B] long -> scalar."""
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy_smooth_others: expected logits [B, C] and labels [B], got {tuple(logits.shape)}, "
            f"{tuple(labels.shape)}"
        )
    num_classes = logits.shape[1]
    if num_classes < 2:
        raise ValueError(f"cross_entropy_smooth_others: needs at least 2 classes, got {num_classes}")
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"cross_entropy_smooth_others: epsilon must be in [0, 1), got {epsilon}")
    log_p = F.log_softmax(logits, dim=1)  # [B, C]
    picked = log_p.gather(1, labels[:, None])[:, 0]  # [B]: log p of the label
    others = log_p.sum(dim=1) - picked  # [B]: sum of log p over the C - 1 wrong classes
    return -((1.0 - epsilon) * picked + epsilon / (num_classes - 1) * others).mean()


def center_loss(feats: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Center loss as in the BoT strong-baseline code: L = (1/B) sum_i ||f_i - c_{y_i}||^2 (squared Euclidean,
    no 1/2 factor). feats [B, D], labels [B] in [0, C), centers [C, D] -> scalar."""
    _check_feats_labels(feats, labels, "center_loss")
    if centers.dim() != 2 or centers.shape[1] != feats.shape[1]:
        raise ValueError(f"center_loss: centers must be [C, {feats.shape[1]}], got {tuple(centers.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= centers.shape[0]):
        raise ValueError(
            f"center_loss: labels must lie in [0, {centers.shape[0]}), got [{labels.min()}, {labels.max()}]"
        )
    return (feats - centers[labels]).pow(2).sum(1).mean()


def centroid_triplet(
    feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.5, soft_margin: bool = False
) -> torch.Tensor:
    """Centroid triplet loss as the centroids-reid training code computes it (Wieczorek et al., ICONIP 2021).

    Images of an id are numbered 0, 1, ... in batch order. Slot s holds, for every id k with an s-th image and
    at least two images, the s-th image q_ks and the leave-s-out centroid c_ks (mean of k's other images).
    Each slot is one batch-hard triplet over {q_ks} U {c_ks}: every point is an anchor, its positive is its
    partner (d(q_ks, c_ks)), its negative the closest point of another id, image or centroid; Euclidean
    distances, hinge at `margin` (softplus without margin when soft_margin). Loss = mean over slots of the
    mean over their anchors. Slots with fewer than two ids are skipped, ids with one image never take part
    (no centroid); with no valid slot the loss is 0. Ids may have different counts (ragged K).
    feats [B, D], labels [B] -> scalar.
    """
    _check_feats_labels(feats, labels, "centroid_triplet")
    ids, inv = torch.unique(labels, return_inverse=True)  # [P], [B]
    same = inv.unsqueeze(0) == inv.unsqueeze(1)  # [B, B]
    rank = torch.tril(same, diagonal=-1).sum(1)  # [B] position of each image within its id
    counts = torch.bincount(inv, minlength=len(ids))  # [P]
    slots = int(counts.max())
    idx = torch.full((slots, len(ids)), -1, dtype=torch.long, device=feats.device)  # [S, P]
    idx[rank, inv] = torch.arange(len(labels), device=feats.device)
    valid = (idx >= 0) & (counts >= 2).unsqueeze(0)  # [S, P]
    slot_ok = valid.sum(1) >= 2  # [S]
    if not slot_ok.any():
        return _zero_loss(feats)
    idx, valid = idx[slot_ok], valid[slot_ok]
    sums = torch.zeros(len(ids), feats.shape[1], dtype=feats.dtype, device=feats.device)
    sums = sums.index_add(0, inv, feats)  # [P, D]
    q = feats[idx.clamp(min=0)]  # [S, P, D] (rows of invalid ids are placeholders, masked below)
    c = (sums.unsqueeze(0) - q) / (counts - 1).clamp(min=1).to(feats.dtype).view(1, -1, 1)  # [S, P, D]
    pts = torch.cat([q, c], 1)  # [S, 2P, D]
    sq = pts.pow(2).sum(2)  # [S, 2P]
    dist = (sq.unsqueeze(2) + sq.unsqueeze(1) - 2.0 * pts @ pts.transpose(1, 2)).clamp(min=_EPS).sqrt()
    n = len(ids)
    pid = torch.arange(n, device=feats.device).repeat(2)  # [2P] the id of each point
    point_ok = valid.repeat(1, 2)  # [S, 2P]
    partner = torch.arange(2 * n, device=feats.device).roll(n)  # q_k <-> c_k
    d_ap = dist.gather(2, partner.view(1, -1, 1).expand(len(idx), -1, 1)).squeeze(2)  # [S, 2P]
    neg = (pid.unsqueeze(0) != pid.unsqueeze(1)).unsqueeze(0) & point_ok.unsqueeze(1)  # [S, 2P, 2P]
    d_an = dist.masked_fill(~neg, float("inf")).amin(2)  # [S, 2P]
    per = _ranking(d_ap, d_an, margin, soft_margin) * point_ok  # [S, 2P]
    return (per.sum(1) / point_ok.sum(1)).mean()


def centroid_triplet_per_image(
    feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.5, soft_margin: bool = False
) -> torch.Tensor:
    """A simplified centroid triplet loss (reidkit's first form; `method.ctl_form=per_image`).

    Unlike the reference form (`centroid_triplet`), images are never negatives, centroids never anchors, and
    the negatives are full centroids. Every image i is a query. Its positive is the leave-one-out centroid
    of the OTHER images of its id in the batch, p_i = (sum_{j: y_j = y_i} f_j - f_i) / (n_{y_i} - 1); its
    negative is the closest centroid c_k = mean_{j: y_j = k} f_j among the other ids k != y_i.
    loss_i = max(0, d(f_i, p_i) - min_k d(f_i, c_k) + margin) (softplus without margin when soft_margin).
    Ids with fewer images are used as they are (no resampling); a query alone with its id in the batch has no
    positive centroid and is left out, as is every query when the batch holds one id; with no valid query the
    loss is 0. feats [B, D], labels [B] -> scalar.
    """
    _check_feats_labels(feats, labels, "centroid_triplet_per_image")
    ids, inv = torch.unique(labels, return_inverse=True)  # [P], [B]
    member = F.one_hot(inv, num_classes=len(ids)).to(feats.dtype)  # [B, P]
    counts = member.sum(0)  # [P]
    sums = member.t() @ feats  # [P, D]
    centroids = sums / counts.unsqueeze(1)  # [P, D]
    own_count = counts[inv]  # [B]
    valid = (own_count > 1) & (len(ids) > 1)  # [B]
    if not valid.any():
        return _zero_loss(feats)
    loo = (sums[inv] - feats) / (own_count - 1).clamp(min=1).unsqueeze(1)  # [B, D] leave-one-out centroids
    d_pos = (feats - loo).pow(2).sum(1).clamp(min=_EPS).sqrt()  # [B]
    d_cent = pairwise_euclidean(feats, centroids)  # [B, P]
    d_neg = d_cent.masked_fill(member.bool(), float("inf")).amin(1)  # [B]
    return _ranking(d_pos[valid], d_neg[valid], margin, soft_margin).mean()
