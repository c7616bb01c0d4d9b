"""Cluster-Contrast vs Cluster-Contrast + ISE on cuhk03_detected within a CPU budget: a table + JSON.

    python bench/cc_frozen_stem.py --cache-only                      # stem maps once (~8 min, 2 cores)
    python bench/cc_frozen_stem.py --variants cc cc_ise --seeds 0 1 2 3 4 [--epochs 20 --iters 60 --step 14]
    python bench/cc_frozen_stem.py --bn-check     # why the recipes set model.freeze_bn (folded-BN weights)
    python bench/cc_frozen_stem.py --variants cc_ise --sampler cluster_contrast --pk 16 16 \
        --memory-update sequential --iters 15 --tag reference      # Cluster-Contrast's sampler and memory

The recipes `configs/cuhk03_detected/cc_osnet.yaml` / `cc_ise_osnet.yaml` run unchanged except for what makes
them fit two CPU cores: the OSNet x0.25 MSMT17 start is split after `conv3`; the stem (conv1..conv3) stays
frozen and its 256 x 128 feature maps ([96, 16, 8] per image, and those of the mirrored image) are computed
once and cached; `conv4`, `conv5` and the BNNeck train. So the only augmentation is the horizontal flip (no
pad/crop, no erasing). Everything else is the library's: `ClusterContrast` (clustering, memory, ISE, losses),
`fit` (the loop), the sampler (`data.sampler`: PKSampler or ClusterContrastSampler), `evaluate`. Both variants
share seed, budget and stem; only `method.ise` differs. `--sampler`, `--pk`, `--memory-update` override the
recipe's data.sampler, data.p / data.k and method.memory_update (the result records the mean batch size and
the mean number of distinct images per batch: the reference's sampler repeats images). Runs go to
runs/cc_frozen_stem/<variant>_s<seed>/ (metrics.jsonl per epoch: clusters, outliers, ARI, loss parts,
lambda_t) and their result.json; the table of all runs under --out to --table
(bench/results/cc_frozen_stem.json).
The cache records what it was computed from (image lists, weights file, input size); it is checked before use.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reidkit.app import build
from reidkit.config import load_config
from reidkit.data.loaders import eval_loader, pk_sampler
from reidkit.data.subsets import relabel
from reidkit.engine.loop import fit
from reidkit.evaluation import evaluate
from reidkit.types import Batch, Features, Record
from reidkit.utils import atomic_write, resolve_device, seed_everything

REPO = Path(__file__).resolve().parents[1]
RECIPES = {
    "cc": "configs/cuhk03_detected/cc_osnet.yaml",
    "cc_ise": "configs/cuhk03_detected/cc_ise_osnet.yaml",
}
log = logging.getLogger("cc_frozen_stem")


def stem_of(body: nn.Module) -> nn.Sequential:
    """OSNet up to and including conv3: [B, 3, 256, 128] -> [B, 96, 16, 8] for x0.25."""
    return nn.Sequential(body.conv1, body.maxpool, body.conv2, body.conv3)


def rest_of(body: nn.Module) -> nn.Sequential:
    """What trains: conv4 and conv5 of OSNet."""
    return nn.Sequential(body.conv4, body.conv5)


@torch.no_grad()
def stem_maps(
    stem: nn.Module, records: Sequence[Record], cfg: Any, device: torch.device, flip: bool
) -> torch.Tensor:
    """Stem maps of every record at the recipe's test transform (mirrored when `flip`), fp16 on CPU."""
    out, done = [], 0
    for i, b in enumerate(
        eval_loader(
            records, build.eval_transform(cfg), batch_size=cfg.data.test_batch_size, workers=cfg.data.workers
        )
    ):
        x = b.images.to(device)
        out.append(stem(x.flip(3) if flip else x).half().cpu())
        done += len(b)
        if i % 10 == 0:
            log.info("stem maps%s: %d / %d", " (mirrored)" if flip else "", done, len(records))
    return torch.cat(out)


def cache_identity(cfg: Any, split: Any) -> dict[str, Any]:
    """What the cached stem maps depend on: backbone, weights file, input size, the image lists in order."""
    w = Path(cfg.model.weights)
    return {
        "key": {
            "backbone": cfg.model.backbone,
            "weights": str(w.resolve()),
            "weights_bytes": w.stat().st_size,
            "size": [cfg.data.height, cfg.data.width],
        },
        "train_paths": [r.path for r in split.train],
        "query_paths": [r.path for r in split.query],
        "gallery_paths": [r.path for r in split.gallery],
    }


def build_cache(cfg: Any, path: Path, device: torch.device) -> dict[str, Any]:
    """Compute (or read) the stem maps of train (plain + mirrored), query and gallery."""
    if path.is_file():
        return torch.load(path, weights_only=True)
    split = build.load_split(cfg.data)
    method = build.build_method(cfg, 0).to(device).eval()
    stem = stem_of(method.model.backbone)
    cache = {
        **cache_identity(cfg, split),
        "train": stem_maps(stem, split.train, cfg, device, flip=False),
        "train_flip": stem_maps(stem, split.train, cfg, device, flip=True),
        "query": stem_maps(stem, split.query, cfg, device, flip=False),
        "gallery": stem_maps(stem, split.gallery, cfg, device, flip=False),
    }
    with atomic_write(path) as fh:
        torch.save(cache, fh)
    return cache


def check_cache(cache: dict[str, Any], cfg: Any, split: Any, path: Path) -> None:
    """The cached maps must belong to this config's images, weights and input size, row by row."""
    bad = [k for k, v in cache_identity(cfg, split).items() if cache.get(k) != v]
    if bad:
        raise ValueError(f"{path}: cached for other {bad}; delete it (or pass another --cache) to rebuild")


def cached_stem_method(cfg: Any) -> Any:
    """The recipe's method with OSNet cut after conv3: it takes the cached stem maps as its input."""
    method = build.build_method(cfg, 0)
    method.model.backbone = rest_of(method.model.backbone)
    return method


# overrides the cached stem maps would silently ignore
IGNORED = (
    "data.height",
    "data.width",
    "data.pad",
    "data.erasing",
    "data.color_jitter",
    "data.flip",
    "model.backbone",
    "model.weights",
    "model.last_stride",
)


class CachedPK:
    """The epoch's P x K batches (the recipe's data.sampler) over cached stem maps; each sample is mirrored
    with probability 0.5. `sizes` collects (batch size, distinct images) of every batch drawn."""

    def __init__(
        self,
        maps: torch.Tensor,
        flipped: torch.Tensor,
        rows: np.ndarray,
        records: Sequence[Record],
        cfg: Any,
        epoch: int,
        sizes: list[tuple[int, int]] | None = None,
    ) -> None:
        self.maps, self.flipped, self.rows, self.records = maps, flipped, rows, records
        self.sizes = sizes if sizes is not None else []
        self.sampler = pk_sampler(
            records,
            p=cfg.data.p,
            k=cfg.data.k,
            seed=cfg.train.seed,
            num_batches=cfg.optim.iters_per_epoch,
            epoch=epoch,
            sampler=cfg.data.sampler,
        )  # the library's P x K sampling
        self.rng = np.random.default_rng([cfg.train.seed, epoch])

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        for idx in self.sampler:
            self.sizes.append((len(idx), len(set(idx))))
            rows = torch.from_numpy(self.rows[idx])
            flip = torch.from_numpy(self.rng.random(len(idx)) < 0.5)
            x = torch.where(flip[:, None, None, None], self.flipped[rows], self.maps[rows]).float()
            yield Batch(
                images=x,
                pids=torch.as_tensor([self.records[i].pid for i in idx]),
                camids=torch.as_tensor([self.records[i].camid for i in idx]),
                index=torch.as_tensor(idx),
            )


def embed(method: Any, maps: torch.Tensor, records: Sequence[Record], device: torch.device) -> Features:
    """L2-normalised `bn_feat` of cached maps through the trainable part, in record order."""
    emb = method.embedders()["image"]
    feats = [emb.embed_images(maps[i : i + 256].float().to(device)).cpu() for i in range(0, len(maps), 256)]
    return Features(
        feats=torch.cat(feats).numpy(),
        pids=np.asarray([r.pid for r in records]),
        camids=np.asarray([r.camid for r in records]),
        index=np.arange(len(records)),
    )


def split_report(method: Any, cache: dict[str, Any], split: Any, device: torch.device) -> dict[str, float]:
    """Per-image and centroid metrics of the query / gallery stem maps through the trainable part."""
    q = embed(method, cache["query"], split.query, device)
    g = embed(method, cache["gallery"], split.gallery, device)
    img, cen = evaluate(q, g).as_dict(), evaluate(q, g, centroids=True).as_dict()
    return {
        "mAP": img["mAP"],
        "R1": img["R1"],
        "R5": img["R5"],
        "centroid_mAP": cen["mAP"],
        "centroid_R1": cen["R1"],
    }


@torch.no_grad()
def bn_check(args: Any, cache: dict[str, Any], device: torch.device, batches: int = 5) -> dict[str, Any]:
    """Test metrics of the untrained start after `batches` train-mode forwards (no optimiser step) that only
    move BatchNorm running statistics (momentum 0.1) towards CUHK03 batch statistics. The weights file folds
    its BNs into the convs (placeholder statistics 0 / 1), so train-mode BN computes another function unless
    the statistics are kept (model.freeze_bn) or first recalibrated without changing the eval function."""
    from reidkit.models.weights import recalibrate_batchnorm

    cfg = load_config(REPO / RECIPES["cc"], [f"data.root={args.data}", "model.freeze_bn=false"])
    split = build.load_split(cfg.data)
    check_cache(cache, cfg, split, args.cache)
    g = torch.Generator().manual_seed(0)
    n = cfg.data.p * cfg.data.k
    calib = [
        cache["train"][torch.randint(0, len(cache["train"]), (n,), generator=g)].float() for _ in range(20)
    ]
    rows = {  # name: (recalibrate conv4/conv5 BN first, which BN statistics move)
        "start": (False, "none"),
        "conv4_conv5_and_bnneck_stats_moved": (False, "all"),
        "bnneck_stats_moved": (False, "bnneck"),
        "recalibrated": (True, "none"),
        "recalibrated_then_all_stats_moved": (True, "all"),
    }
    res: dict[str, Any] = {"batches": batches}
    for name, (recalibrate, moved) in rows.items():
        seed_everything(0)
        method = cached_stem_method(cfg)
        method.to(device)
        if recalibrate:
            recalibrate_batchnorm(method.model.backbone, calib)
        method.train()
        if moved == "bnneck":
            method.model.backbone.eval()
        for _ in range(batches if moved != "none" else 0):
            ix = torch.randint(0, len(cache["train"]), (n,), generator=g)
            method.model(cache["train"][ix].float().to(device))
        res[name] = split_report(method, cache, split, device)
    return res


def run(variant: str, seed: int, args: Any, cache: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Train one variant / seed from the cached stem maps; start and final test metrics, last clustering."""
    over = [
        f"data.root={args.data}",
        f"train.seed={seed}",
        f"optim.epochs={args.epochs}",
        f"optim.iters_per_epoch={args.iters}",
        f"optim.milestones=[{args.step}]",
        "data.workers=0",
        *([f"data.sampler={args.sampler}"] if args.sampler else []),
        *([f"data.p={args.pk[0]}", f"data.k={args.pk[1]}"] if args.pk else []),
        *([f"method.memory_update={args.memory_update}"] if args.memory_update else []),
        *args.set,
    ]
    ignored = [o for o in args.set if o.split("=", 1)[0] in IGNORED]
    if ignored:
        raise ValueError(f"--set {ignored}: the cached stem maps do not follow these; use the recipe")
    cfg = load_config(REPO / RECIPES[variant], over)
    split = build.load_split(cfg.data)
    check_cache(cache, cfg, split, args.cache)
    seed_everything(seed)
    method = cached_stem_method(cfg)
    rows = {p: i for i, p in enumerate(cache["train_paths"])}
    train_recs, _ = relabel(split.train)  # true ids: only for the pseudo-labels' ARI/NMI log
    sizes: list[tuple[int, int]] = []

    def make_loader(records: Sequence[Record], epoch: int, skip: int) -> CachedPK:
        if skip:
            raise ValueError("this benchmark does not resume inside an epoch")
        ix = np.asarray([rows[r.path] for r in records])
        return CachedPK(cache["train"], cache["train_flip"], ix, records, cfg, epoch, sizes)

    def extract(records: Sequence[Record]) -> Features:
        ix = torch.as_tensor([rows[r.path] for r in records])
        return embed(method, cache["train"][ix], records, device)

    method.to(device)
    start = split_report(method, cache, split, device)
    o = cfg.optim
    opt, sched = build.build_optimisation(method, o)
    out_dir = Path(args.out) / f"{variant}{args.tag and '_' + args.tag}_s{seed}"
    t0 = time.perf_counter()
    fit(
        method,
        train_recs,
        make_loader,
        optimizer=opt,
        scheduler=sched,
        epochs=o.epochs,
        device=device,
        out_dir=out_dir,
        amp=o.amp,
        log_every=0,
        extract=extract,
    )
    seconds = time.perf_counter() - t0
    stats = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    last = [s for s in stats if s.get("event") == "epoch"][-1]
    return {
        "run": out_dir.name,
        "variant": variant,
        "tag": args.tag,
        "overrides": over[6:],
        "sampler": cfg.data.sampler,
        "p": cfg.data.p,
        "k": cfg.data.k,
        "memory_update": cfg.method.memory_update,
        "seed": seed,
        "epochs": o.epochs,
        "iters": o.iters_per_epoch,
        "seconds": seconds,
        "start": start,
        "test": split_report(method, cache, split, device),
        "last_clusters": last.get("clusters"),
        "last_outliers": last.get("outliers"),
        "last_ari": last.get("ari"),
        "batches": len(sizes),
        "mean_batch": float(np.mean([b for b, _ in sizes])) if sizes else 0.0,
        "mean_distinct": float(np.mean([d for _, d in sizes])) if sizes else 0.0,
    }


def main() -> None:
    """Build or read the stem cache, then the BN check or the runs, then the table of every finished run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cuhk03_detected")
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "cc_frozen_stem" / "stem_cache.pt")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "cc_frozen_stem")
    ap.add_argument("--variants", nargs="+", default=["cc", "cc_ise"], choices=sorted(RECIPES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--step", type=int, default=14, help="learning-rate step (x0.1) after this epoch")
    ap.add_argument("--set", nargs="*", default=[], help="extra recipe overrides, key=value")
    ap.add_argument("--tag", default="", help="names this setting in the table and the run folders")
    ap.add_argument("--table", type=Path, default=REPO / "bench" / "results" / "cc_frozen_stem.json")
    ap.add_argument("--sampler", choices=["pk", "cluster_contrast"], help="data.sampler (default: recipe)")
    ap.add_argument("--pk", nargs=2, type=int, metavar=("P", "K"), help="data.p, data.k (default: recipe)")
    ap.add_argument(
        "--memory-update",
        choices=["hard", "mean", "sequential"],
        help="method.memory_update (default: recipe)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cache-only", action="store_true")
    ap.add_argument("--bn-check", action="store_true", help="only the BatchNorm-statistics check")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    device = resolve_device(args.device)
    cfg = load_config(REPO / RECIPES["cc"], [f"data.root={args.data}", "data.workers=2"])
    cache = build_cache(cfg, args.cache, device)
    if args.cache_only:
        return
    if args.bn_check:
        res = bn_check(args, cache, device)
        for k, v in res.items():
            if k == "batches":
                continue
            print(f"{k:36} mAP {v['mAP']:.4f} R1 {v['R1']:.4f} centroid mAP {v['centroid_mAP']:.4f}")
        with atomic_write(REPO / "bench" / "results" / "cc_frozen_stem_bn_check.json", "w") as fh:
            fh.write(json.dumps(res, indent=2))
        return
    for seed in args.seeds:
        for v in args.variants:
            r = run(v, seed, args, cache, device)
            with atomic_write(Path(args.out) / r["run"] / "result.json", "w") as fh:
                fh.write(json.dumps(r, indent=2))
    # the table: every finished run under --out (runs may go on in parallel processes)
    rows = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*/result.json"))]
    with atomic_write(args.table, "w") as fh:
        fh.write(json.dumps(rows, indent=2))
    print(
        f"{'variant:tag':16} {'seed':>4} {'ep x it':>8} "
        f"{'mAP':>7} {'R1':>7} {'cent.mAP':>9} {'start mAP':>9} "
        f"{'clusters':>8} {'outl.':>6} {'ARI':>6} {'batch':>6} {'min':>5}"
    )
    for r in sorted(rows, key=lambda x: (x["tag"], x["epochs"], x["iters"], x["variant"], x["seed"])):
        t = r["test"]
        print(
            f"{r['variant'] + (r['tag'] and ':' + r['tag']):16} {r['seed']:4d} "
            f"{r['epochs']:>3}x{r['iters']:<4} "
            f"{t['mAP']:7.4f} {t['R1']:7.4f} "
            f"{t['centroid_mAP']:9.4f} {r['start']['mAP']:9.4f} {r['last_clusters'] or 0:8.0f} "
            f"{r['last_outliers'] or 0:6.0f} {r['last_ari'] or 0:6.3f} {r.get('mean_batch', 0):6.1f} "
            f"{r['seconds'] / 60:5.1f}"
        )


if __name__ == "__main__":
    main()
