"""Subsets of training records: class relabelling, few-shot limits and validation identities carved from
training (model selection never looks at the test split)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from reidkit.types import Record


def relabel(records: Sequence[Record]) -> tuple[list[Record], dict[int, int]]:
    """Map pids to 0..C-1 in sorted order (classifier targets); returns the records and the mapping."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [dataclasses.replace(r, pid=mapping[r.pid]) for r in records], mapping


def limit_per_id(records: Sequence[Record], n: int, seed: int) -> list[Record]:
    """Few-shot: keep at most `n` images per identity/class (seeded choice, original order kept)."""
    if n <= 0:
        return list(records)
    rng = np.random.default_rng(seed)
    by_pid: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        by_pid.setdefault(r.pid, []).append(i)
    keep = sorted(j for ix in by_pid.values() for j in (rng.choice(ix, size=min(n, len(ix)), replace=False)))
    return [records[j] for j in keep]


def carve_validation(
    train: Sequence[Record], n_ids: int, seed: int
) -> tuple[list[Record], list[Record], list[Record]]:
    """Hold out `n_ids` *training* identities for model selection: one query per camera, the rest gallery.

    Only identities seen by at least two cameras (or with >= 2 images when cameras are unknown) qualify, so
    every validation query has a valid match. Returns (train, val_query, val_gallery).
    """
    by_pid: dict[int, list[Record]] = {}
    for r in train:
        by_pid.setdefault(r.pid, []).append(r)
    eligible = sorted(
        p for p, rs in by_pid.items() if len({r.camid for r in rs}) >= 2 or (rs[0].camid < 0 and len(rs) >= 2)
    )
    if n_ids > len(eligible):
        raise ValueError(
            f"data.val_ids={n_ids} but only {len(eligible)} training identities can be validated"
        )
    rng = np.random.default_rng(seed)
    held = set(rng.choice(eligible, size=n_ids, replace=False).tolist())
    query, gallery = [], []
    for pid in sorted(held):
        seen: set[int] = set()
        for r in by_pid[pid]:
            if r.camid >= 0 and r.camid not in seen:
                seen.add(r.camid)
                query.append(r)
            elif r.camid < 0 and not seen:
                seen.add(-1)
                query.append(r)
            else:
                gallery.append(r)
    return [r for r in train if r.pid not in held], query, gallery
