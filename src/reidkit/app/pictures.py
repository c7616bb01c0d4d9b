"""Pictures of a trained model: ranked lists (chosen queries, or the worst and best by AP), FRPT's prompt."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reidkit.app.build import eval_transform, extract_features
from reidkit.config import Config
from reidkit.data.loaders import eval_loader
from reidkit.methods import Method
from reidkit.models.backbones import image_norm
from reidkit.types import Record, Split


def ranked_picture(
    method: Method,
    queries: Sequence[Record],
    gallery: Sequence[Record],
    cfg: Config,
    out: Path,
    k: int = 10,
    titles: Sequence[str] | None = None,
) -> Path:
    """Ranked lists (query + top-k; same-camera images of the same id removed, as in evaluation)."""
    from reidkit.evaluation.metrics import resolve_camera_rule
    from reidkit.viz import ranked_list_grid

    device = next(method.parameters()).device
    q = extract_features(method, queries, cfg, device)
    g = extract_features(method, gallery, cfg, device)
    sim = q.feats @ g.feats.T  # [Q, G]
    if resolve_camera_rule(q.camids, g.camids):  # the junk rule of query_stats
        sim[(q.pids[:, None] == g.pids[None, :]) & (q.camids[:, None] == g.camids[None, :])] = -np.inf
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    paths = [[gallery[j].path for j in row] for row in top]
    matches = [[bool(g.pids[j] == q.pids[i]) for j in row] for i, row in enumerate(top)]
    titles = titles or [f"query id {r.pid}" for r in queries]
    return ranked_list_grid([r.path for r in queries], paths, matches, out, titles=titles)


def worst_best_picture(method: Method, split: Split, cfg: Config, out: Path, n: int = 6, k: int = 10) -> Path:
    """Ranked lists of the `n` worst and `n` best queries by average precision."""
    from reidkit.evaluation import query_stats

    device = next(method.parameters()).device
    q = extract_features(method, split.query, cfg, device)
    g = extract_features(method, split.gallery, cfg, device)
    st = query_stats(1.0 - q.feats @ g.feats.T, q.pids, g.pids, q.camids, g.camids)
    order = np.argsort(st.ap, kind="stable")
    picked = [*order[:n], *order[::-1][:n]]
    rows = [int(st.query_index[i]) for i in picked]
    titles = [f"{'worst' if j < n else 'best'} AP {st.ap[i]:.2f}" for j, i in enumerate(picked)]
    return ranked_picture(method, [split.query[r] for r in rows], split.gallery, cfg, out, k, titles)


def prompt_picture(
    method: Method, split: Split, cfg: Config, device: torch.device, out: Path, n: int = 6
) -> Path:
    """Original vs prompt-modified test images: the magnification FRPT's prompt learned."""
    from reidkit.viz_prompts import write_spp_picture

    step = max(len(split.query) // n, 1)
    recs = list(split.query)[::step][:n]
    loader = eval_loader(
        recs,
        eval_transform(cfg),
        batch_size=cfg.data.test_batch_size,
        workers=cfg.data.workers,
        pin_memory=device.type == "cuda",
    )
    batch = next(iter(loader))
    norm = image_norm(cfg.model.backbone)
    return write_spp_picture(method, batch.images.to(device), out, mean=norm["mean"], std=norm["std"])
