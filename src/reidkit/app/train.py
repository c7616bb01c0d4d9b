"""Train per a Config into its run folder, then test the model selected on validation identities."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reidkit.app.build import (
    build_method,
    build_optimisation,
    extract_features,
    load_split,
    rerank_options,
    train_loaders,
)
from reidkit.config import Config, dump, to_dict
from reidkit.data.subsets import carve_validation, limit_per_id, relabel
from reidkit.engine import distributed
from reidkit.engine.checkpoint import load_checkpoint
from reidkit.engine.loop import Callback, FitResult, fit
from reidkit.evaluation import evaluate
from reidkit.evaluation.protocols import split_metrics
from reidkit.methods import Method
from reidkit.types import Record, Split
from reidkit.utils import resolve_device, run_lock, seed_everything

log = logging.getLogger(__name__)


def train(cfg: Config, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train per the config into cfg.train.out_dir (locked against a second run meanwhile); returns the final
    test metrics (per image and centroids). `callbacks` receive the training loop's events.

    Launched by torchrun, every process calls this: they join one process group (`engine.distributed`),
    rank 0 holds the lock, writes the run folder and returns the metrics; the other ranks return {}."""
    world, device = distributed.init(resolve_device(cfg.train.device), cfg.train.dist_backend)
    try:
        with run_lock(cfg.train.out_dir) if world.rank == 0 else contextlib.nullcontext():
            return _train(cfg, callbacks, world, device)
    finally:
        distributed.shutdown()


def _train(
    cfg: Config, callbacks: Sequence[Callback], world: distributed.World, device: torch.device
) -> dict[str, Any]:
    seed_everything(cfg.train.seed)
    amp = cfg.optim.amp and device.type == "cuda"  # the loop's rule: mixed precision on CUDA only
    log.info(
        "device %s, dtype %s, world size %d (backend %s), %d torch threads",
        device,
        "float16 autocast (AMP)" if amp else "float32",
        world.size,
        world.backend,
        torch.get_num_threads(),
    )
    if cfg.model.sync_bn and world.size > 1 and device.type != "cuda":
        raise ValueError("model.sync_bn needs CUDA devices (SyncBatchNorm has no CPU kernel)")
    out_dir = Path(cfg.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if world.rank == 0:
        dump(cfg, out_dir / "config.yaml")
    if world.rank > 0:  # rank 0 reads (or, for the synthetic set, writes) the data first
        distributed.barrier()
    split = load_split(cfg.data)
    if world.rank == 0 and world.size > 1:
        distributed.barrier()
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
    method = build_method(cfg, num_classes, records=train_recs, run_dir=out_dir, device=device)
    if cfg.model.sync_bn and world.size > 1:
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    if world.rank > 0:  # augmentations of its own (the weights come from rank 0 when training starts)
        seed_everything(cfg.train.seed + 1000 * world.rank)
    o = cfg.optim
    optimizer, scheduler = build_optimisation(method, o)

    def validate(m: Method) -> dict[str, float]:
        return evaluate(
            extract_features(m, val_q, cfg, device), extract_features(m, val_g, cfg, device)
        ).as_dict()

    result: FitResult = fit(
        method,
        train_recs,
        train_loaders(cfg, device, method.tokenizer(), rank=world.rank, world_size=world.size),
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
        callbacks=callbacks,
        extract=lambda recs: extract_features(method, recs, cfg, device),
    )
    if result.stopped_early:
        return {"stopped_early": True, "steps": result.steps}
    if world.rank > 0:
        distributed.barrier()  # rank 0 tests; the process group stays until it is done
        return {}
    if val_q:  # model selection on the held-out training ids: the test split sees the selected model only
        best = load_checkpoint(out_dir / "best.pt", map_location=device)
        method.load_state_dict(best["model"])
        log.info("testing best.pt (validation %s %.4f after epoch %d)", "mAP", best["best"], best["epoch"])
    if method.visual_prompt() is not None:
        from reidkit.app.pictures import prompt_picture

        prompt_picture(method, split, cfg, device, out_dir / "spp.png")
    rows = test_metrics(method, split, cfg, device)
    distributed.barrier()
    return rows


def test_metrics(
    method: Method,
    split: Split,
    cfg: Config,
    device: torch.device,
    *,
    centroids: bool = True,
    rerank: bool | None = None,
) -> dict[str, Any]:
    """Test-split metrics by protocol (`evaluation.protocols.split_metrics`) with the method's embedders;
    `rerank=None` follows eval.rerank. Fine-grained rows also count the trainable parameters."""
    rerank = cfg.eval.rerank if rerank is None else rerank
    has_text = method.tokenizer() is not None and "text" in method.embedders()
    if split.protocol == "text" and not has_text:
        raise ValueError(f"method {cfg.method.name!r} has no text stream for the text split {split.name}")
    rows = split_metrics(
        split,
        lambda recs: extract_features(method, recs, cfg, device),
        text_features=(lambda recs: extract_features(method, recs, cfg, device, "text"))
        if has_text
        else None,
        centroids=centroids,
        rerank=rerank_options(cfg, split.protocol) if rerank else None,
    )
    if "fine_grained" in rows:
        trainable, total = method.trainable_parameters()
        rows["fine_grained"].update({"trainable_params": trainable, "total_params": total})
    return rows
