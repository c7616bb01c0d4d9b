"""extract(embedder, loader, device) -> Features: batched inference over a record list."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from reidkit.types import Batch, Embedder, Features


@torch.no_grad()
def extract(
    embedder: Embedder,
    loader: Iterable[Batch],
    device: torch.device | str,
    progress: Callable[[int], None] | None = None,
) -> Features:
    """Embed every batch on `device`; features come back as float32 numpy in loader order."""
    feats, pids, camids, index, image_ids = [], [], [], [], []
    for batch in loader:
        b = batch.to(device, non_blocking=True)
        feats.append(embedder.embed(b).float().cpu())
        pids.append(batch.pids)
        camids.append(batch.camids)
        index.append(batch.index)
        if batch.image_ids is not None:
            image_ids.append(batch.image_ids)
        if progress is not None:
            progress(len(batch))
    if not feats:
        raise ValueError("extract: the loader produced no batches (empty record list?)")
    return Features(
        feats=torch.cat(feats).numpy().astype(np.float32),
        pids=torch.cat(pids).numpy().astype(np.int64),
        camids=torch.cat(camids).numpy().astype(np.int64),
        index=torch.cat(index).numpy().astype(np.int64),
        image_ids=torch.cat(image_ids).numpy().astype(np.int64) if image_ids else None,
    )
