"""Config sections -> the objects a run needs: the split, transforms, loaders, the method, the optimiser."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from reidkit.config import Config, DataConfig, OptimConfig
from reidkit.data.loaders import Tokenizer, eval_loader, train_loader_factory
from reidkit.data.transforms import build_transforms
from reidkit.engine.checkpoint import load_checkpoint
from reidkit.engine.loop import MakeLoader
from reidkit.engine.schedule import build_optimizer, build_scheduler
from reidkit.evaluation.extract import extract
from reidkit.methods import METHODS, BuildInputs, Method
from reidkit.models.backbones import image_norm
from reidkit.types import Features, Record, Split

log = logging.getLogger(__name__)


def load_split(data: DataConfig) -> Split:
    """Read the configured dataset; "synthetic" writes the built-in set to the cache once and reads it."""
    from reidkit.data.readers import read_split

    if data.format == "synthetic":
        fmt = data.options.get("reader", "market1501")
        opts = {k: v for k, v in data.options.items() if k != "reader"}
        return read_split(fmt, synthetic_root(data), **opts)
    if data.root is None:
        raise ValueError(f"data.root is required for format {data.format!r} (pass data.root=PATH)")
    return read_split(data.format, data.root, **data.options)


def synthetic_root(data: DataConfig) -> Path:
    """The folder of the built-in synthetic set a config reads: `data.root` itself when it holds a set written
    by `reidkit synth --out DIR`, else the set for data.synthetic_ids/seed in the cache folder `data.root`
    (default ~/.cache/reidkit), written once and reused."""
    from reidkit.data.synthetic import MANIFEST, SyntheticConfig, ensure_synthetic

    root = Path(data.root).expanduser() if data.root else None
    if root is not None and (root / MANIFEST).is_file():
        return root
    return ensure_synthetic(root, SyntheticConfig(num_ids=data.synthetic_ids, seed=data.synthetic_seed))


def eval_transform(cfg: Config) -> Callable[[Image.Image], torch.Tensor]:
    """The test-time transform the model was trained with (size and the backbone's normalisation)."""
    d = cfg.data
    return build_transforms(
        (d.height, d.width), train=False, crop=d.crop, resize=d.resize, **image_norm(cfg.model.backbone)
    )


def extract_features(
    method: Method,
    records: Sequence[Record],
    cfg: Config,
    device: torch.device,
    modality: str = "image",
    workers: int | None = None,
) -> Features:
    """Features of `records` with the method's embedder for `modality` ("image", or "text": captions);
    `workers` overrides data.workers (0 for a few hundred images: starting workers costs more)."""
    data, pin = cfg.data, device.type == "cuda"
    if modality == "text":
        tokenizer = method.tokenizer()
        if tokenizer is None:
            raise ValueError(f"method {cfg.method.name!r} has no tokenizer for captions")
        loader = eval_loader(records, None, batch_size=data.test_batch_size, tokenizer=tokenizer)
    else:
        loader = eval_loader(
            records,
            eval_transform(cfg),
            batch_size=data.test_batch_size,
            workers=data.workers if workers is None else workers,
            pin_memory=pin,
        )
    return extract(method.embedders()[modality], loader, device)


def train_loaders(
    cfg: Config,
    device: torch.device,
    tokenizer: Tokenizer | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> MakeLoader:
    """The training loader factory of `engine.fit` for this config (captions too, given a `tokenizer`); in a
    distributed run, this rank's share of the global batches (`optim.batch_scope`)."""
    data = cfg.data
    transform = build_transforms(
        (data.height, data.width),
        train=True,
        pad=data.pad,
        flip=data.flip,
        erasing=data.erasing,
        color_jitter=data.color_jitter,
        color_jitter_p=data.color_jitter_p,
        color_jitter_hue=data.color_jitter_hue,
        crop=data.crop,
        resize=data.resize,
        **image_norm(cfg.model.backbone),
    )
    return train_loader_factory(
        transform,
        p=data.p * (world_size if cfg.optim.batch_scope == "per_rank" else 1),
        k=data.k,
        seed=cfg.train.seed,
        num_batches=cfg.optim.iters_per_epoch,
        workers=data.workers,
        pin_memory=device.type == "cuda",
        tokenizer=tokenizer,
        rank=rank,
        world_size=world_size,
        sampler=data.sampler,
    )


def build_method(
    cfg: Config,
    num_classes: int,
    *,
    weights: str | None = "config",
    records: Sequence[Record] = (),
    run_dir: str | Path | None = None,
    state: dict[str, torch.Tensor] | None = None,
    device: torch.device | None = None,
) -> Method:
    """The configured method from the METHODS table; `weights="config"` starts from model.weights."""
    inputs = BuildInputs(
        num_classes=num_classes,
        weights=cfg.model.weights if weights == "config" else weights,
        steps_per_epoch=cfg.optim.iters_per_epoch,
        records=records,
        run_dir=Path(run_dir if run_dir is not None else cfg.train.out_dir),
        state=state,
        device=device or torch.device("cpu"),
        seed=cfg.train.seed,
    )
    return METHODS[cfg.method.name].build(cfg.method, cfg.model, inputs)


def load_method(cfg: Config, ckpt: str | Path, device: torch.device) -> Method:
    """Rebuild the method from its config and load a checkpoint's weights (no pretrained weights read)."""
    state = load_checkpoint(ckpt, map_location=device)["model"]
    num_classes = next((int(v.shape[0]) for k, v in state.items() if k.endswith("classifier.weight")), 0)
    method = build_method(
        cfg, num_classes, weights=None, run_dir=Path(ckpt).parent, state=state, device=device
    )
    method.load_state_dict(state)
    return method.to(device).eval()


def rerank_options(cfg: Config, protocol: str = "reid") -> dict[str, Any]:
    """The re-ranking keywords of `reidkit.evaluation.evaluate` from the eval config: k-reciprocal (k1, k2,
    lambda), or for the text protocol with eval.text_rerank=topk_overlap TextReID's top-k overlap."""
    e = cfg.eval
    if protocol == "text" and e.text_rerank == "topk_overlap":
        return {"method": "topk_overlap", "topk": e.text_rerank_topk, "weight": e.text_rerank_weight}
    return {"k1": e.rerank_k1, "k2": e.rerank_k2, "lambda_value": e.rerank_lambda}


def build_optimisation(
    method: Method, o: OptimConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser over the method's trainable parameter groups and its learning-rate schedule."""
    optimizer = build_optimizer(
        method.param_groups(o.lr, o.weight_decay), o.name, o.lr, o.weight_decay, o.momentum, o.nesterov
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
