"""The plain typed values that flow between reidkit's stages (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@dataclass(frozen=True, slots=True)
class Record:
    """One sample: an image file with its identity and camera; text data has one record per caption."""

    path: str
    pid: int
    camid: int = -1
    text: str | None = None
    image_id: int = -1


@dataclass(frozen=True)
class Split:
    """A dataset split into train / query / gallery record lists (query and gallery are separate lists)."""

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    # "reid": image query vs image gallery (cross-camera protocol); "text": caption queries vs image gallery;
    # "fine_grained": class-disjoint retrieval, the test set is both query and gallery (Recall@K).
    protocol: str = "reid"

    @property
    def num_train_ids(self) -> int:
        return len({r.pid for r in self.train})

    def stats(self) -> dict[str, dict[str, Any]]:
        """Identities, images, cameras and captions per part, for `datasets stats` and logs."""
        out: dict[str, dict[str, Any]] = {}
        for part in ("train", "query", "gallery"):
            recs: list[Record] = getattr(self, part)
            cams: dict[int, int] = {}
            for r in recs:
                cams[r.camid] = cams.get(r.camid, 0) + 1
            out[part] = {
                "ids": len({r.pid for r in recs}),
                "images": len({r.path for r in recs}),
                "records": len(recs),
                "captions": sum(r.text is not None for r in recs),
                "cameras": dict(sorted(cams.items())),
            }
        return out


@dataclass
class Batch:
    """A collated mini-batch; text fields are present only for image-text data."""

    images: torch.Tensor  # [B, 3, H, W]
    pids: torch.Tensor  # [B] long
    camids: torch.Tensor  # [B] long
    index: torch.Tensor  # [B] long: position in the record list
    tokens: torch.Tensor | None = None  # [B, L] long, 0 = padding
    lengths: torch.Tensor | None = None  # [B] long
    image_ids: torch.Tensor | None = None  # [B] long

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return Batch(
            images=self.images.to(device, non_blocking=non_blocking),
            pids=self.pids.to(device, non_blocking=non_blocking),
            camids=self.camids.to(device, non_blocking=non_blocking),
            index=self.index.to(device, non_blocking=non_blocking),
            tokens=mv(self.tokens),
            lengths=mv(self.lengths),
            image_ids=mv(self.image_ids),
        )

    def __len__(self) -> int:
        return int(self.pids.shape[0])


@dataclass
class Features:
    """Extracted embeddings with their labels; evaluation and indexing take Features, never models."""

    feats: np.ndarray  # [N, D] float32
    pids: np.ndarray  # [N] int64
    camids: np.ndarray  # [N] int64
    index: np.ndarray  # [N] int64: position in the record list
    image_ids: np.ndarray | None = None  # [N] int64, text data only

    def __post_init__(self) -> None:
        n = self.feats.shape[0]
        for name in ("pids", "camids", "index"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"Features.{name} has {getattr(self, name).shape[0]} entries, feats has {n}")
        if self.image_ids is not None and self.image_ids.shape[0] != n:
            raise ValueError(f"Features.image_ids has {self.image_ids.shape[0]} entries, feats has {n}")

    def __len__(self) -> int:
        return int(self.feats.shape[0])


@dataclass
class Report:
    """Retrieval metrics; `cmc[k-1]` is rank-k accuracy."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    recall_at_k: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "num_valid_queries": int(self.num_valid_queries),
        }
        for k in (1, 5, 10, 20):
            if len(self.cmc) >= k:
                d[f"R{k}"] = float(self.cmc[k - 1])
        for k, v in self.recall_at_k.items():
            d[f"Recall@{k}"] = float(v)
        return d


@runtime_checkable
class Embedder(Protocol):
    """Maps a batch to L2-normalised embeddings [N, D] without gradients."""

    dim: int

    def embed(self, batch: Batch) -> torch.Tensor: ...


@runtime_checkable
class Index(Protocol):
    """A searchable store of vectors with integer ids."""

    def add(self, vecs: np.ndarray, ids: np.ndarray) -> None: ...

    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Index: ...

    def __len__(self) -> int: ...


@dataclass
class EpochContext:
    """What a method may look at when an epoch starts (unsupervised methods re-cluster here)."""

    epoch: int
    epochs: int
    records: Sequence[Record]  # the full training set as given to fit (true labels may be unknown)
    device: torch.device
    # extract(records) -> Features with the method's image embedder, test transforms, in record order
    extract: Callable[[Sequence[Record]], Features] | None = None
