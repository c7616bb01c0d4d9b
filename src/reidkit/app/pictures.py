"""Pictures of a trained model: ranked lists (chosen queries, or the worst and best by AP), FRPT's prompt."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reidkit.app.build import eval_transform, extract_features
from reidkit.config import Config
from reidkit.data.loaders import eval_loader
from reidkit.methods import Method
from reidkit.models.backbones import image_norm
from reidkit.types import Features, Record, Split


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
    device = next(method.parameters()).device
    q = extract_features(method, queries, cfg, device, workers=_workers(queries, cfg))
    g = extract_features(method, gallery, cfg, device, workers=_workers(gallery, cfg))
    return _ranked_grid(q, g, queries, gallery, out, k, titles)


def _ranked_grid(
    q: Features,
    g: Features,
    queries: Sequence[Record],
    gallery: Sequence[Record],
    out: Path,
    k: int,
    titles: Sequence[str] | None,
) -> Path:
    from reidkit.evaluation.metrics import resolve_camera_rule
    from reidkit.viz import ranked_list_grid

    sim = q.feats @ g.feats.T  # [Q, G] cosine similarity (unit features)
    if resolve_camera_rule(q.camids, g.camids):  # the junk rule of query_stats
        sim[(q.pids[:, None] == g.pids[None, :]) & (q.camids[:, None] == g.camids[None, :])] = -np.inf
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    paths = [[gallery[j].path for j in row] for row in top]
    matches = [[bool(g.pids[j] == q.pids[i]) for j in row] for i, row in enumerate(top)]
    labels = [
        [f"{r + 1} · {_who(g.pids[j])} · {sim[i, j]:.2f}" for r, j in enumerate(row)]
        for i, row in enumerate(top)
    ]
    titles = titles or [f"query {_who(r.pid)}" for r in queries]
    return ranked_list_grid([r.path for r in queries], paths, matches, out, titles=titles, labels=labels)


def _workers(records: Sequence[Record], cfg: Config) -> int:
    """Loader workers for a picture's extraction: none below a few thousand images (worker start-up, about
    a second each, costs more than decoding in the main process)."""
    return cfg.data.workers if len(records) > 3000 else 0


def _who(pid: int) -> str:
    """How a result's identity reads on a picture: distractors (0) and unlabelled images (-1) by name."""
    return "distractor" if pid == 0 else "unlabelled" if pid < 0 else f"id {pid}"


def worst_best_picture(method: Method, split: Split, cfg: Config, out: Path, n: int = 6, k: int = 10) -> Path:
    """Ranked lists of the `n` worst and `n` best queries by average precision (features extracted once)."""
    from reidkit.evaluation import query_stats

    device = next(method.parameters()).device
    q = extract_features(method, split.query, cfg, device, workers=_workers(split.query, cfg))
    g = extract_features(method, split.gallery, cfg, device, workers=_workers(split.gallery, cfg))
    st = query_stats(1.0 - q.feats @ g.feats.T, q.pids, g.pids, q.camids, g.camids)
    order = np.argsort(st.ap, kind="stable")
    picked = [*order[:n], *order[::-1][:n]]
    rows = np.asarray([int(st.query_index[i]) for i in picked], dtype=np.int64)
    titles = [
        f"{'worst' if j < n else 'best'} AP {st.ap[i]:.2f} · {_who(split.query[int(st.query_index[i])].pid)}"
        for j, i in enumerate(picked)
    ]
    ids = None if q.image_ids is None else q.image_ids[rows]
    chosen = dataclasses.replace(
        q, feats=q.feats[rows], pids=q.pids[rows], camids=q.camids[rows], index=rows, image_ids=ids
    )
    return _ranked_grid(chosen, g, [split.query[r] for r in rows], split.gallery, out, k, titles)


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
