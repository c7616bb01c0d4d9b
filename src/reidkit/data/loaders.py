"""Data loaders from plain arguments: the evaluation loader (records in order) and the training loader
factory (P x K batches per epoch, exactly resumable inside an epoch, with or without workers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader

from reidkit.data.dataset import ImageDataset, ImageTextDataset, collate
from reidkit.data.sampler import ClusterContrastSampler, PKSampler
from reidkit.types import Batch, Record

log = logging.getLogger(__name__)

Transform = Callable[[Image.Image], torch.Tensor]
Tokenizer = Callable[[str], list[int]]
# data.sampler -> the batch sampler class
SAMPLERS: dict[str, type[PKSampler] | type[ClusterContrastSampler]] = {
    "pk": PKSampler,
    "cluster_contrast": ClusterContrastSampler,
}


def eval_loader(
    records: Sequence[Record],
    transform: Transform | None,
    *,
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
    tokenizer: Tokenizer | None = None,
) -> DataLoader:
    """Batches of `records` in order: images (`transform`), or captions only (`transform=None` with a
    `tokenizer`), or both."""
    if tokenizer is None and transform is None:
        raise ValueError("eval_loader needs a transform (images) or a tokenizer (captions)")
    return DataLoader(
        _dataset(records, transform, tokenizer),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
    )


def pk_sampler(
    records: Sequence[Record],
    *,
    p: int,
    k: int,
    seed: int,
    num_batches: int,
    epoch: int,
    skip: int = 0,
    rank: int = 0,
    world_size: int = 1,
    sampler: str = "pk",
) -> PKSampler | ClusterContrastSampler:
    """The epoch's P x K batch sampler over `records` (`num_batches` long, 0 = one pass): `sampler="pk"`
    PKSampler (disjoint camera-interleaved K-chunks, no repeats), "cluster_contrast" the reference's rule
    (ClusterContrastSampler: every identity once per pass, K draws preferring other cameras, with replacement
    when short). P (over all ranks) shrinks to the identities there are when fewer are left (early
    pseudo-labelling epochs), to a multiple of `world_size`."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r} unknown; valid: {list(SAMPLERS)}")
    n_ids = len({r.pid for r in records if r.pid >= 0})
    if n_ids < p:
        fewer = n_ids - n_ids % world_size
        log.warning("epoch %d: only %d identities/clusters for P=%d; using P=%d", epoch, n_ids, p, fewer)
        p = fewer
    out = SAMPLERS[sampler](
        [r.pid for r in records],
        p,
        k,
        seed=seed,
        camids=[r.camid for r in records],
        rank=rank,
        world_size=world_size,
        num_batches=num_batches,
    )
    out.set_epoch(epoch, skip)
    return out


def train_loader_factory(
    transform: Transform,
    *,
    p: int,
    k: int,
    seed: int,
    num_batches: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
    tokenizer: Tokenizer | None = None,
    rank: int = 0,
    world_size: int = 1,
    sampler: str = "pk",
) -> Callable[[Sequence[Record], int, int], DataLoader | SkipFirst]:
    """(records, epoch, skip) -> the epoch's P x K loader with its first `skip` batches left out; a per-epoch
    generator keeps resumes exact. With `world_size > 1`, this rank's P / world_size identities of each
    global batch (P = `p`), and worker streams of its own. `sampler`: "pk" | "cluster_contrast" (see
    pk_sampler)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r} unknown; valid: {list(SAMPLERS)}")

    def make(records: Sequence[Record], epoch: int, skip: int) -> DataLoader | SkipFirst:
        # Workers draw augmentations from their own streams, seeded per epoch and fed batches round-robin:
        # a resume inside an epoch replays the skipped batches (and discards them) so every later batch
        # gets the same worker and stream position as in an uninterrupted run. Without workers the
        # augmentations come from the main RNG, restored from the checkpoint, so the sampler just skips.
        replay = skip if workers > 0 else 0
        batches = pk_sampler(
            records,
            p=p,
            k=k,
            seed=seed,
            num_batches=num_batches,
            epoch=epoch,
            skip=skip - replay,
            rank=rank,
            world_size=world_size,
            sampler=sampler,
        )
        loader = DataLoader(
            _dataset(records, transform, tokenizer),
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed * 1000 + epoch + 1_000_003 * rank),
        )
        return SkipFirst(loader, replay) if replay else loader

    return make


def _dataset(
    records: Sequence[Record], transform: Transform | None, tokenizer: Tokenizer | None
) -> ImageDataset:
    """Images only, or images and captions when there is a tokenizer."""
    return (
        ImageDataset(records, transform)
        if tokenizer is None
        else ImageTextDataset(records, transform, tokenizer)
    )


class SkipFirst:
    """A loader whose first `n` batches are produced and discarded."""

    def __init__(self, loader: DataLoader, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return max(len(self.loader) - self.n, 0)

    def __iter__(self) -> Iterator[Batch]:
        it = iter(self.loader)
        for _ in range(self.n):
            next(it, None)
        yield from it
