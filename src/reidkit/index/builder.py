"""IndexBuilder: a resumable gallery build that persists each batch as a shard next to the output folder,
so an interrupted `index build` continues where it stopped instead of re-embedding the whole gallery."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.index.folder import IndexIntegrityError
from reidkit.index.gallery import GalleryIndex
from reidkit.types import Features, Record
from reidkit.utils import atomic_write

logger = logging.getLogger(__name__)


@dataclass
class _BuildConfig:
    dim: int
    mode: str
    factory: str
    model_sha256: str | None
    nprobe: int | None
    ef_search: int | None
    dataset: dict[str, Any] | None  # what is being indexed (see `dataset_identity`)


def dataset_identity(records: Sequence[Record], **source: Any) -> dict[str, Any]:
    """Identify a gallery being indexed: its source (root, format, reader options), record count and a
    SHA-256 of the record list, so a resumed build never mixes shards of two datasets."""
    digest = hashlib.sha256(json.dumps([asdict(r) for r in records], sort_keys=True).encode()).hexdigest()
    return {**source, "count": len(records), "records_sha256": digest}


def _bad_shard(path: Path, e: Exception) -> IndexIntegrityError:
    return IndexIntegrityError(
        f"{path}: unreadable build shard ({type(e).__name__}: {e}); delete it to redo that batch"
    )


class IndexBuilder:
    """Resumable gallery build: each `add`ed batch is persisted as a shard in `.<out>.partial/` next to the
    output; after an interruption a new builder with the same settings skips what is done (`pending`)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        dim: int,
        mode: str = "instance",
        factory: str = "Flat",
        model_sha256: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        train_size: int = 100_000,
        seed: int = 0,
        dataset: dict[str, Any] | None = None,
        fresh: bool = False,
    ) -> None:
        """`dataset` identifies what is indexed (`dataset_identity`); an unfinished build of anything else
        is refused, or discarded when `fresh`."""
        self.out_dir = Path(out_dir)
        self.work_dir = self.out_dir.parent / f".{self.out_dir.name}.partial"
        # Fails early on a bad mode / factory / parameter combination.
        GalleryIndex(
            dim, mode=mode, factory=factory, model_sha256=model_sha256, nprobe=nprobe, ef_search=ef_search
        )
        self.config = _BuildConfig(dim, mode, factory, model_sha256, nprobe, ef_search, dataset)
        self.train_size, self.seed = train_size, seed
        cfg_path = self.work_dir / "build.json"
        if fresh and self.work_dir.exists():
            logger.info("discarding the unfinished build in %s (fresh start asked)", self.work_dir)
            shutil.rmtree(self.work_dir)
        if cfg_path.is_file():
            saved = json.loads(cfg_path.read_text())
            diff = {k: (saved.get(k), v) for k, v in asdict(self.config).items() if saved.get(k) != v}
            if diff:
                what = "of another dataset" if "dataset" in diff else "with other settings"
                raise ValueError(
                    f"{cfg_path}: an unfinished build {what} exists ({diff} as (saved, given)); "
                    f"start fresh (`index build --fresh`) or delete {self.work_dir}"
                )
        else:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(cfg_path, "w") as fh:
                json.dump(asdict(self.config), fh, indent=2, sort_keys=True)
        self._done: set[Record] = set()
        self._shards = sorted(self.work_dir.glob("shard-*.npz"))
        for shard in self._shards:
            self._done.update(self._read_shard(shard)[1])
        if self._shards:
            logger.info("resuming build in %s: %d records done", self.work_dir, len(self._done))

    @property
    def num_done(self) -> int:
        return len(self._done)

    def pending(self, records: Iterable[Record]) -> list[Record]:
        """The records not yet in a persisted shard, in their given order."""
        return [r for r in records if r not in self._done]

    def add(self, features: Features, records: Sequence[Record]) -> None:
        """Persist one batch (features.index points into records) as a shard, atomically."""
        if features.feats.ndim != 2 or features.feats.shape[1] != self.config.dim:
            raise ValueError(
                f"features.feats: expected shape [N, {self.config.dim}], got {features.feats.shape}"
            )
        pos = np.asarray(features.index, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(records)):
            raise ValueError(f"features.index must point into the {len(records)} records")
        rows = [records[int(p)] for p in pos]
        payload = json.dumps([asdict(r) for r in rows])
        shard = self.work_dir / f"shard-{len(self._shards):06d}.npz"
        with atomic_write(shard) as fh:
            np.savez(
                fh,
                feats=np.asarray(features.feats, dtype=np.float32),
                pids=np.asarray(features.pids, dtype=np.int64),
                camids=np.asarray(features.camids, dtype=np.int64),
                records=np.array(payload),
            )
        self._shards.append(shard)
        self._done.update(rows)

    @staticmethod
    def _shard_arrays(path: Path, *keys: str) -> dict[str, np.ndarray]:
        """Arrays of one shard; a damaged shard is an IndexIntegrityError naming it."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in keys}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise _bad_shard(path, e) from None

    @classmethod
    def _read_shard(cls, path: Path) -> tuple[Features, list[Record]]:
        a = cls._shard_arrays(path, "feats", "pids", "camids", "records")
        try:
            recs = [Record(**d) for d in json.loads(str(a["records"]))]
        except (ValueError, TypeError) as e:
            raise _bad_shard(path, e) from None
        n = len(recs)
        return Features(a["feats"], a["pids"], a["camids"], np.arange(n, dtype=np.int64)), recs

    def finish(self) -> GalleryIndex:
        """Build the GalleryIndex from all shards (IVF trains on a sample first), save it, drop the shards."""
        c = self.config
        gi = GalleryIndex(
            c.dim,
            mode=c.mode,
            factory=c.factory,
            model_sha256=c.model_sha256,
            nprobe=c.nprobe,
            ef_search=c.ef_search,
        )
        if gi.needs_training:
            gi.train(self._training_sample())
        for shard in self._shards:
            gi.add(*self._read_shard(shard))
        gi.save(self.out_dir)
        shutil.rmtree(self.work_dir)
        return gi

    def _training_sample(self) -> np.ndarray:
        """Up to `train_size` vectors drawn uniformly (seeded) from all shards."""
        sizes = []
        for shard in self._shards:
            sizes.append(int(self._shard_arrays(shard, "pids")["pids"].shape[0]))
        total = sum(sizes)
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(total, size=min(total, self.train_size), replace=False))
        out, start = [], 0
        for shard, n in zip(self._shards, sizes, strict=True):
            local = pick[(pick >= start) & (pick < start + n)] - start
            if len(local):
                out.append(self._shard_arrays(shard, "feats")["feats"][local])
            start += n
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), np.float32)
