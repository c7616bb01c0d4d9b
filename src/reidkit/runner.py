"""Turns a resolved Config into library calls: data, model, method, loaders, fit, evaluation.

The CLI stays thin by calling these; everything here is also usable from a notebook.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from reidkit.config import (
    METHOD_CONFIGS,
    ClusterContrastConfig,
    Config,
    CTLConfig,
    DataConfig,
    FRPTConfig,
    OptimConfig,
    TextReIDConfig,
    dump,
    to_dict,
)
from reidkit.data.dataset import ImageDataset, ImageTextDataset, collate
from reidkit.data.sampler import PKSampler
from reidkit.data.transforms import build_transforms
from reidkit.engine.checkpoint import load_checkpoint
from reidkit.engine.loop import FitResult, fit
from reidkit.engine.schedule import build_optimizer, build_scheduler
from reidkit.evaluation import evaluate, recall_at_k
from reidkit.evaluation.extract import extract
from reidkit.methods.base import Method
from reidkit.types import Features, Record, Report, Split
from reidkit.utils import resolve_device, run_lock, seed_everything

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- data
def load_split(data: DataConfig) -> Split:
    """Read the configured dataset; "synthetic" writes the built-in set to the cache once and reads it."""
    from reidkit.data.readers import read_split

    if data.format == "synthetic":
        root = synthetic_root(data)
        fmt = data.options.get("reader", "market1501")
        opts = {k: v for k, v in data.options.items() if k != "reader"}
        return read_split(fmt, root, **opts)
    if data.root is None:
        raise ValueError(f"data.root is required for format {data.format!r} (pass data.root=PATH)")
    return read_split(data.format, data.root, **data.options)


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


def image_norm(backbone: str) -> dict[str, tuple[float, float, float]]:
    """The input normalisation a backbone's pretrained weights expect (EfficientNet-Lite0 differs)."""
    from reidkit.models.backbones import BACKBONES

    spec = BACKBONES.get(backbone)
    return {} if spec is None else {"mean": spec.mean, "std": spec.std}


def test_loader(records: Sequence[Record], cfg: Config, device: torch.device) -> DataLoader:
    data = cfg.data
    tf = build_transforms((data.height, data.width), train=False, **image_norm(cfg.model.backbone))
    return DataLoader(
        ImageDataset(records, tf),
        batch_size=data.test_batch_size,
        shuffle=False,
        num_workers=data.workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
    )


def pk_sampler(records: Sequence[Record], cfg: Config, epoch: int, skip: int = 0) -> PKSampler:
    """The epoch's P x K batch sampler over `records` (camera-interleaved, `optim.iters_per_epoch` long)."""
    p = cfg.data.p
    n_ids = len({r.pid for r in records if r.pid >= 0})
    if n_ids < p:  # pseudo-labelling can yield fewer clusters than P in an early epoch
        log.warning("epoch %d: only %d identities/clusters for P=%d; using P=%d", epoch, n_ids, p, n_ids)
        p = n_ids
    sampler = PKSampler(
        [r.pid for r in records],
        p,
        cfg.data.k,
        seed=cfg.train.seed,
        camids=[r.camid for r in records],
        num_batches=cfg.optim.iters_per_epoch,
    )
    sampler.set_epoch(epoch, skip)
    return sampler


def make_train_loader_factory(cfg: Config, device: torch.device, tokenizer=None):
    """(records, epoch, skip) -> DataLoader over P x K batches; a per-epoch generator keeps resumes exact."""
    data, seed = cfg.data, cfg.train.seed
    tf = build_transforms(
        (data.height, data.width),
        train=True,
        pad=data.pad,
        flip=data.flip,
        erasing=data.erasing,
        color_jitter=data.color_jitter,
        **image_norm(cfg.model.backbone),
    )

    def make(records: Sequence[Record], epoch: int, skip: int) -> DataLoader | _SkipFirst:
        # Workers draw augmentations from their own streams, seeded per epoch and fed batches round-robin:
        # a resume inside an epoch replays the skipped batches (and discards them) so every later batch
        # gets the same worker and stream position as in an uninterrupted run. Without workers the
        # augmentations come from the main RNG, restored from the checkpoint, so the sampler just skips.
        replay = skip if data.workers > 0 else 0
        sampler = pk_sampler(records, cfg, epoch, skip - replay)
        dataset = ImageDataset(records, tf) if tokenizer is None else ImageTextDataset(records, tf, tokenizer)
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=data.workers,
            collate_fn=collate,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(seed * 1000 + epoch),
        )
        return _SkipFirst(loader, replay) if replay else loader

    return make


class _SkipFirst:
    """A loader whose first `n` batches are produced and discarded."""

    def __init__(self, loader: DataLoader, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return max(len(self.loader) - self.n, 0)

    def __iter__(self):
        it = iter(self.loader)
        for _ in range(self.n):
            next(it, None)
        yield from it


# ----------------------------------------------------------------------------------------------- methods
def build_method(
    cfg: Config, num_classes: int, weights: str | None = "config", word_table: torch.Tensor | None = None
) -> Method:
    """The explicit method table: config section -> constructor call."""
    from reidkit.models.model import ReIDModel, build_reid_model

    m = cfg.model
    w = m.weights if weights == "config" else weights
    if (m.freeze_bn or m.freeze_stages) and not isinstance(cfg.method, CTLConfig | ClusterContrastConfig):
        raise ValueError(
            "model.freeze_bn and model.freeze_stages apply to ctl and cluster_contrast; textreid freezes its "
            "image backbone with method.freeze_backbone and frpt's backbone is always frozen"
        )
    if m.freeze_bn and m.weights is None:
        log.warning("model.freeze_bn with model.weights=null keeps freshly initialised BN statistics (0 / 1)")
    kw = {k: v for k, v in to_dict(cfg.method).items() if k != "name"}

    def reid_model(classes: int) -> ReIDModel:  # CTL and Cluster-Contrast: backbone + BNNeck head
        return build_reid_model(
            m.backbone,
            classes,
            weights=w,
            last_stride=m.last_stride,
            pooling=m.pooling,
            neck=m.neck,
            freeze_bn=m.freeze_bn,
            freeze_stages=m.freeze_stages,
        )

    if isinstance(cfg.method, CTLConfig):
        from reidkit.methods.ctl import CTL

        return CTL(reid_model(num_classes), num_classes, **kw)
    if isinstance(cfg.method, ClusterContrastConfig):
        from reidkit.methods.cluster_contrast import ClusterContrast

        return ClusterContrast(reid_model(0), steps_per_epoch=cfg.optim.iters_per_epoch, **kw)
    if isinstance(cfg.method, TextReIDConfig):
        from reidkit.methods.textreid import build_textreid

        if word_table is None:
            raise ValueError("textreid needs a word table (runner.train builds it from the vocabulary)")
        return build_textreid(
            cfg.method,
            num_classes,
            word_table,
            backbone=m.backbone,
            weights=w,
            last_stride=m.last_stride,
            pooling=m.pooling,
        )
    if isinstance(cfg.method, FRPTConfig):
        from reidkit.methods.frpt import build_frpt

        return build_frpt(
            cfg.method,
            num_classes,
            backbone=m.backbone,
            weights=w,
            last_stride=m.last_stride,
            pooling=m.pooling,
            neck=m.neck,
        )
    raise ValueError(f"method {cfg.method!r} has no builder; valid: {sorted(METHOD_CONFIGS)}")


# ----------------------------------------------------------------------------------------------- train / eval
def extract_features(
    method: Method, records: Sequence[Record], cfg: Config, device: torch.device, modality: str = "image"
) -> Features:
    return extract(method.embedders()[modality], test_loader(records, cfg, device), device)


def evaluate_records(
    method: Method,
    query: Sequence[Record],
    gallery: Sequence[Record],
    cfg: Config,
    device: torch.device,
    *,
    centroids: bool | str = False,
    rerank: bool = False,
) -> Report:
    """Extract query and gallery features and evaluate them (CMC, mAP, mINP)."""
    q = extract_features(method, query, cfg, device)
    g = extract_features(method, gallery, cfg, device)
    return evaluate(q, g, centroids=centroids, rerank=rerank_options(cfg) if rerank else None)


def rerank_options(cfg: Config) -> dict[str, Any]:
    """The re-ranking keywords of `reidkit.evaluation.evaluate` from the eval config."""
    e = cfg.eval
    return {"k1": e.rerank_k1, "k2": e.rerank_k2, "lambda_value": e.rerank_lambda}


def build_optimisation(
    method: Method, o: OptimConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser over the method's trainable parameter groups and its learning-rate schedule."""
    optimizer = build_optimizer(
        method.param_groups(o.lr, o.weight_decay), o.name, o.lr, o.weight_decay, o.momentum
    )
    scheduler = build_scheduler(
        optimizer,
        epochs=o.epochs,
        warmup_epochs=o.warmup_epochs,
        warmup_factor=o.warmup_factor,
        schedule=o.schedule,
        milestones=o.milestones,
        gamma=o.gamma,
    )
    return optimizer, scheduler


def train(cfg: Config) -> dict[str, Any]:
    """Train per the config into cfg.train.out_dir (locked against a second run meanwhile); returns final
    test metrics (per image and centroids)."""
    with run_lock(cfg.train.out_dir):
        return _train(cfg)


def _train(cfg: Config) -> dict[str, Any]:
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    out_dir = Path(cfg.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dump(cfg, out_dir / "config.yaml")
    split = load_split(cfg.data)
    train_recs = limit_per_id(split.train, cfg.data.few_shot, cfg.train.seed)
    val_q: list[Record] = []
    val_g: list[Record] = []
    if cfg.data.val_ids > 0:
        train_recs, val_q, val_g = carve_validation(train_recs, cfg.data.val_ids, cfg.train.seed)
    train_recs, _ = relabel(train_recs)
    num_classes = len({r.pid for r in train_recs})
    log.info(
        "data %s: %d train images / %d ids, %d val ids, %d query, %d gallery",
        split.name,
        len(train_recs),
        num_classes,
        cfg.data.val_ids,
        len(split.query),
        len(split.gallery),
    )
    vocab = None
    if isinstance(cfg.method, TextReIDConfig):
        vocab, table = text_vocab_and_table(cfg, train_recs, out_dir, device)
        method = build_method(cfg, num_classes, word_table=table)
        method.vocab = vocab
    else:
        method = build_method(cfg, num_classes)
    o = cfg.optim
    optimizer, scheduler = build_optimisation(method, o)

    def validate(m: torch.nn.Module) -> dict[str, float]:
        return evaluate_records(m, val_q, val_g, cfg, device).as_dict()  # type: ignore[arg-type]

    result: FitResult = fit(
        method,
        train_recs,
        make_train_loader_factory(cfg, device, tokenizer=vocab),
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=o.epochs,
        device=device,
        out_dir=out_dir,
        amp=o.amp,
        grad_clip=o.grad_clip,
        evaluate=validate if val_q else None,
        eval_every=cfg.eval.every,
        resume=cfg.train.resume,
        log_every=cfg.train.log_every,
        max_steps=cfg.train.max_steps,
        config=to_dict(cfg),
        tensorboard=cfg.train.tensorboard,
        callbacks=_CALLBACKS,
        extract=lambda recs: extract_features(method, recs, cfg, device),
    )
    if result.stopped_early:
        return {"stopped_early": True, "steps": result.steps}
    if val_q:  # model selection on the held-out training ids: the test split sees the selected model only
        best = load_checkpoint(out_dir / "best.pt", map_location=device)
        method.load_state_dict(best["model"])
        log.info("testing best.pt (validation %s %.4f after epoch %d)", "mAP", best["best"], best["epoch"])
    if getattr(method, "spp", None) is not None:
        prompt_picture(method, split, cfg, device, out_dir / "spp.png")
    return test_metrics(method, split, cfg, device)


def prompt_picture(
    method: Method, split: Split, cfg: Config, device: torch.device, out: Path, n: int = 6
) -> Path:
    """Original vs SPP-modified test images: the magnification the FRPT prompt learned."""
    from reidkit.viz_prompts import write_spp_picture

    step = max(len(split.query) // n, 1)
    recs = list(split.query)[::step][:n]
    batch = next(iter(test_loader(recs, cfg, device)))
    norm = image_norm(cfg.model.backbone)
    return write_spp_picture(method, batch.images.to(device), out, mean=norm["mean"], std=norm["std"])


_CALLBACKS: list = []  # the CLI appends its progress-bar callback here


FINE_GRAINED_KS = (1, 2, 4, 8, 16, 32)


def test_metrics(
    method: Method,
    split: Split,
    cfg: Config,
    device: torch.device,
    *,
    centroids: bool = True,
    rerank: bool | None = None,
) -> dict[str, Any]:
    """Test-split metrics by protocol: reid (per image, centroids, camera-aware centroids, re-ranking),
    fine_grained (Recall@K + mAP, the test set is query and gallery), text (text->image)."""
    rerank = cfg.eval.rerank if rerank is None else rerank
    trainable, total = method.trainable_parameters()
    params = {"trainable_params": trainable, "total_params": total}
    if split.protocol == "fine_grained":
        q = extract_features(method, split.query, cfg, device)
        ks = tuple(k for k in FINE_GRAINED_KS if k < len(q))
        row = evaluate(q, q, protocol="fine_grained").as_dict()
        row.update({f"Recall@{k}": v for k, v in recall_at_k(q.feats, q.pids, ks).items()})
        return {"fine_grained": {**row, **params}}
    if split.protocol == "text":
        return text_test_metrics(method, split, cfg, device, rerank=rerank)
    q = extract_features(method, split.query, cfg, device)
    g = extract_features(method, split.gallery, cfg, device)
    out = {"image": evaluate(q, g).as_dict()}
    if centroids:
        out["centroid"] = evaluate(q, g, centroids=True).as_dict()
        out["centroid_camera_aware"] = evaluate(q, g, centroids="camera").as_dict()
    if rerank:
        out["image_rerank"] = evaluate(q, g, rerank=rerank_options(cfg)).as_dict()
    return out


def text_vocab_and_table(
    cfg: Config, train_recs: Sequence[Record], out_dir: Path, device: torch.device
) -> tuple[Any, torch.Tensor]:
    """TextReID: vocabulary of the training captions (saved to the run folder) and its word table."""
    from reidkit.data.synthetic import default_cache_dir
    from reidkit.data.text import build_vocab, make_word_table

    m = cfg.method
    missing = [r.path for r in train_recs if r.text is None]
    if missing:
        raise ValueError(
            f"{cfg.data.format}: textreid needs captions; {len(missing)} records have none, "
            f"e.g. {missing[0]} (use a text layout such as cuhkpedes)"
        )
    vocab = build_vocab([r.text for r in train_recs], min_count=m.min_count)
    vocab.save(out_dir / "vocab.json")
    cache = Path(m.table_cache) if m.table_cache else default_cache_dir() / "wordtables"
    table = make_word_table(
        m.word_table,
        vocab,
        cache_dir=cache,
        dim=m.random_dim,
        seed=cfg.train.seed,
        checkpoint=m.clip_checkpoint,
        clip_model=m.clip_model,
        device=device,
    )
    return vocab, table


def text_features(method: Method, records: Sequence[Record], cfg: Config, device: torch.device) -> Features:
    """Caption features with the method's text embedder (one record per caption)."""
    loader = DataLoader(
        ImageTextDataset(records, None, method.vocab),
        batch_size=cfg.data.test_batch_size,
        shuffle=False,
        collate_fn=collate,
    )
    return extract(method.embedders()["text"], loader, device)


def text_test_metrics(
    method: Method, split: Split, cfg: Config, device: torch.device, *, rerank: bool
) -> dict[str, Any]:
    """Text->image R@1/5/10, mAP, mINP over the de-duplicated image gallery (and image->text)."""
    if getattr(method, "vocab", None) is None or "text" not in method.embedders():
        raise ValueError(f"method {cfg.method.name!r} has no text stream for the text split {split.name}")
    q = text_features(method, split.query, cfg, device)
    g = extract_features(method, split.gallery, cfg, device)
    out = {"text_to_image": evaluate(q, g, protocol="text").as_dict()}
    if rerank:
        out["text_to_image_rerank"] = evaluate(q, g, protocol="text", rerank=rerank_options(cfg)).as_dict()
    # image -> text: captions are the gallery; no camera rule (a caption carries its image's camera)
    gi = dataclasses.replace(g, camids=np.full_like(g.camids, -1))
    qt = dataclasses.replace(q, camids=np.full_like(q.camids, -1))
    out["image_to_text"] = evaluate(gi, qt).as_dict()
    return out


def load_method(cfg: Config, ckpt: str | Path, device: torch.device) -> Method:
    """Rebuild the method from its config and load a checkpoint's weights (no pretrained download/load)."""
    state = load_checkpoint(ckpt, map_location=device)
    num_classes = _num_classes_from_state(state["model"])
    if isinstance(cfg.method, TextReIDConfig):
        from reidkit.data.text import Vocab

        vocab_file = Path(ckpt).parent / "vocab.json"
        if not vocab_file.is_file():
            raise FileNotFoundError(f"{vocab_file}: a textreid checkpoint needs its vocab.json beside it")
        method = build_method(
            cfg, num_classes, weights=None, word_table=state["model"]["text_q.embed.weight"]
        )
        method.vocab = Vocab.load(vocab_file)
    else:
        method = build_method(cfg, num_classes, weights=None)
    method.load_state_dict(state["model"])
    return method.to(device).eval()


def _num_classes_from_state(state: dict[str, torch.Tensor]) -> int:
    for k, v in state.items():
        if k.endswith("classifier.weight"):
            return int(v.shape[0])
    return 0


# ----------------------------------------------------------------------------------------------- quickstart
# The quickstart recipe; configs/synthetic/ctl.yaml holds the same settings as a file. It fine-tunes an
# ImageNet start shipped by an installed package (offline), so a few minutes on a CPU give a real gain.
QUICKSTART: dict[str, Any] = {
    "data": {
        "format": "synthetic",
        "height": 128,
        "width": 64,
        "p": 16,
        "k": 4,
        "pad": 6,
        "workers": 2,
        "val_ids": 0,
    },
    "model": {"backbone": "mobilenetv2", "weights": "imagenet", "last_stride": 1, "freeze_stages": 2},
    "method": {"name": "ctl", "centroid_triplet": True},
    "optim": {
        "lr": 3.5e-4,
        "epochs": 20,
        "warmup_epochs": 1,
        "warmup_factor": 0.1,
        "milestones": [15],
    },
    "eval": {"every": 0},
    "train": {"out_dir": "runs/quickstart", "log_every": 10},
}


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


def quickstart(overrides: list[str]) -> dict[str, Any]:
    """Untrained vs trained CTL on the built-in synthetic set. Writes `quickstart.json` ({"untrained",
    "trained"}: test metrics as in test_metrics.json) and a ranked-list picture into the run folder."""
    from reidkit.config import from_dict
    from reidkit.utils import atomic_write

    cfg = from_dict(QUICKSTART, overrides)
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    split = load_split(cfg.data)
    untrained = build_method(cfg, len({r.pid for r in split.train})).to(device)
    before = test_metrics(untrained, split, cfg, device)
    after = train(cfg)
    out_dir = Path(cfg.train.out_dir)
    with atomic_write(out_dir / "quickstart.json", "w") as fh:
        json.dump({"untrained": before, "trained": after}, fh, indent=2)
    method = load_method(cfg, out_dir / "last.pt", device)
    step = max(len(split.query) // 8, 1)
    picture = ranked_picture(
        method,
        list(split.query)[::step][:8],
        split.gallery,
        cfg,
        Path(cfg.train.out_dir) / "ranked_lists.png",
    )
    return {
        "untrained": before,
        "trained": after,
        "picture": str(picture),
        "data_root": str(synthetic_root(cfg.data)),
        "checkpoint": str(out_dir / "best.pt"),
    }


def synthetic_root(data: DataConfig) -> Path:
    """The folder of the built-in synthetic set a config reads (written once, then reused)."""
    from reidkit.data.synthetic import SyntheticConfig, ensure_synthetic

    return ensure_synthetic(
        Path(data.root) if data.root else None,
        SyntheticConfig(num_ids=data.synthetic_ids, seed=data.synthetic_seed),
    )
