"""Cross-modal losses of TextReID (Han et al., BMVC 2021) as pure functions on tensors.

- `cross_modal_info_nce`: CM-MoCo's InfoNCE. Query i (one modality) is pulled to key i (the other
  modality, from the momentum encoder) and pushed from the other batch keys and the queue of past keys,
  never from a key of the *same identity* (those are neither positives nor negatives: masked out).
  `negatives="queue_only"` is the reference code's variant: the queue alone supplies the negatives, and a
  queue entry is dropped for every row when its identity occurs anywhere in the batch.
- `alignment_loss`: the soft-margin image-text alignment loss of ViTAA (Wang et al., ECCV 2020) that TextReID
  keeps: cosine similarities of same-identity pairs pushed above `alpha`, of other pairs below `beta`.
All similarities are cosine: inputs are L2-normalised here, so callers may pass raw features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVE_MODES = ("batch_and_queue", "queue_only")  # cross_modal_info_nce(negatives=...)


def _check(x: torch.Tensor, ids: torch.Tensor, who: str, what: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{who}: {what} must be [N, D], got shape {tuple(x.shape)}")
    if ids.dim() != 1 or ids.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: ids of {what} must be [{x.shape[0]}], got shape {tuple(ids.shape)}")


def cross_modal_info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    ids: torch.Tensor,
    queue: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
    temperature: float = 0.07,
    *,
    negatives: str = "batch_and_queue",
) -> torch.Tensor:
    """Mean over i of -log softmax(s / t)[key i] over {key i} ∪ negatives.

    query [B, D] (gets gradients), keys [B, D] (key i is query i's positive; pass detached momentum
    features), ids [B] identity labels, queue [N, D] with queue_ids [N] (None or N = 0: in-batch only).
    negatives (NEGATIVE_MODES): "batch_and_queue" = the other keys and the queue entries whose id differs
    from row i's; "queue_only" (TextReID's reference code) = the queue entries whose id is none of the
    batch's ids, the same set for every row (an empty queue leaves the positive alone: loss 0).
    """
    _check(query, ids, "cross_modal_info_nce", "query")
    _check(keys, ids, "cross_modal_info_nce", "keys")
    if temperature <= 0:
        raise ValueError(f"cross_modal_info_nce: temperature must be > 0, got {temperature}")
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"cross_modal_info_nce: negatives {negatives!r}; valid: {', '.join(NEGATIVE_MODES)}")
    cand, cand_ids = keys, ids
    if queue is not None and queue.shape[0] > 0:
        if queue_ids is None:
            raise ValueError("cross_modal_info_nce: queue given without queue_ids")
        _check(queue, queue_ids, "cross_modal_info_nce", "queue")
        cand = torch.cat([keys, queue.to(keys.dtype)])  # [B + N, D]
        cand_ids = torch.cat([ids, queue_ids.to(ids.dtype)])  # [B + N]
    b = query.shape[0]
    logits = F.normalize(query, dim=1) @ F.normalize(cand, dim=1).t() / temperature  # [B, B + N]
    same = ids.unsqueeze(1) == cand_ids.unsqueeze(0)  # [B, B + N]
    own = torch.zeros_like(same)
    own[:, :b] = torch.eye(b, dtype=torch.bool, device=same.device)  # the positive of each row
    if negatives == "queue_only":  # only queue entries, and none whose id is anywhere in the batch
        drop = torch.ones_like(same)
        drop[:, b:] = same[:, b:].any(0, keepdim=True)
    else:  # other batch keys and queue entries, unless they share row i's id
        drop = same
    logits = logits.masked_fill(drop & ~own, float("-inf"))
    return F.cross_entropy(logits, torch.arange(b, device=query.device))


def alignment_loss(
    image: torch.Tensor,
    text: torch.Tensor,
    ids: torch.Tensor,
    *,
    alpha: float = 0.6,
    beta: float = 0.4,
    scale_pos: float = 10.0,
    scale_neg: float = 40.0,
) -> torch.Tensor:
    """(2 / B) · [Σ_pos log(1 + e^{-sp(s - α)}) + Σ_neg log(1 + e^{sn(s - β)})] over all image-text pairs.

    image [B, D], text [B, D], ids [B]; s = cosine(image_i, text_j); a pair is positive when ids match.
    The 2 / B normalisation is ViTAA's (per-anchor average over the two directions).
    """
    _check(image, ids, "alignment_loss", "image")
    _check(text, ids, "alignment_loss", "text")
    sim = F.normalize(image, dim=1) @ F.normalize(text, dim=1).t()  # [B, B]
    pos = ids.unsqueeze(1) == ids.unsqueeze(0)  # [B, B]
    loss_pos = F.softplus(-scale_pos * (sim - alpha))[pos].sum()  # softplus(x) = log(1 + e^x), stable
    loss_neg = F.softplus(scale_neg * (sim - beta))[~pos].sum()
    return (loss_pos + loss_neg) * 2.0 / image.shape[0]
