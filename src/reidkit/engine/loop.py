"""fit(): the whole training loop on one screen. Callbacks are plain functions of an event dict.

Under torchrun (`engine.distributed`), every rank runs this loop on its share of each batch; the method is
wrapped in DistributedDataParallel (gradients averaged over ranks), and only rank 0 writes checkpoints,
metrics and validation results."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reidkit.engine import distributed
from reidkit.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from reidkit.types import Batch, EpochContext, Features, Record
from reidkit.utils import atomic_write

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]
# make_loader(records, epoch, skip) -> the batches of that epoch, the first `skip` already left out.
MakeLoader = Callable[[Sequence[Record], int, int], Iterable[Batch]]


@dataclass
class FitResult:
    epochs_run: int
    steps: int
    best: float | None
    last_metrics: dict[str, float]
    stopped_early: bool


class _Metrics:
    """Appends one JSON object per line to metrics.jsonl (and TensorBoard when asked); a fresh run
    (`append=False`) starts a new file and new TensorBoard events, a resumed one continues the old."""

    def __init__(self, out_dir: Path, tensorboard: bool, append: bool, enabled: bool = True) -> None:
        self.path, self.enabled = out_dir / "metrics.jsonl", enabled
        self.tb = None
        if not enabled:  # a rank other than 0: rank 0 writes
            return
        if not append:
            self.path.unlink(missing_ok=True)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # optional dependency

            if not append:  # an earlier run's curves would overlap this one's in TensorBoard
                for old in (out_dir / "tb").glob("events.out.tfevents.*"):
                    old.unlink()

            self.tb = SummaryWriter(str(out_dir / "tb"))

    def drop_after(self, step: int) -> None:
        """Forget rows past `step`: a killed run logged them after its last checkpoint, and the resumed run
        logs those steps again."""
        if not self.enabled or not self.path.is_file():
            return
        lines = self.path.read_text().splitlines()
        keep = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(keep) != len(lines):
            with atomic_write(self.path, "w") as fh:
                fh.write("".join(line + "\n" for line in keep))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.tb is not None:
            group = "val" if row.get("event") == "eval" else "train"  # train/loss, val/mAP, ...
            for k, v in row.items():
                if k not in ("epoch", "step", "event") and isinstance(v, int | float):
                    self.tb.add_scalar(f"{group}/{k}", v, row.get("step", 0))


def will_resume(out_dir: str | Path, resume: bool) -> bool:
    """A run continues (checkpoint, metrics, logs) only when asked to and `out_dir/last.pt` exists."""
    return resume and (Path(out_dir) / "last.pt").is_file()


def fit(
    method: torch.nn.Module,
    records: Sequence[Record],
    make_loader: MakeLoader,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    epochs: int,
    device: torch.device,
    out_dir: str | Path,
    amp: bool = True,
    grad_clip: float | None = None,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    eval_every: int = 0,
    select_metric: str = "mAP",
    resume: bool = False,
    log_every: int = 20,
    max_steps: int = 0,
    config: dict[str, Any] | None = None,
    tensorboard: bool = False,
    callbacks: Sequence[Callback] = (),
    extract: Callable[[Sequence[Record]], Features] | None = None,
) -> FitResult:
    """Train `method` (a reidkit Method) for `epochs`, checkpointing `last.pt` and `best.pt` in `out_dir`.

    `resume=True` continues from `out_dir/last.pt` (model, optimisers, scheduler, AMP scaler, RNG, records and
    position inside the epoch), so the loss curve continues where it stopped. `max_steps` stops after that
    many optimiser steps in total and writes `last.pt` as a kill would leave it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    method.to(device)
    main = distributed.is_main()  # rank 0 (or the only process) writes checkpoints, metrics, validation
    step_fn = _ddp_training_step(method, device) if distributed.active() else method.training_step
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    extra_opts: list[torch.optim.Optimizer] = list(method.extra_optimizers())
    resumed = will_resume(out_dir, resume)
    metrics = _Metrics(out_dir, tensorboard, append=resumed, enabled=main)
    records = list(records)
    all_records = list(records)  # what on_epoch_start sees; `records` becomes the relabelled subset

    start_epoch, skip, step, best = 0, 0, 0, None
    last_eval: dict[str, float] = {}
    restored_rng = None
    if resumed:
        ckpt = load_checkpoint(out_dir / "last.pt", map_location=device)
        method.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for opt, st in zip(extra_opts, ckpt.get("extra_optimizers", []), strict=True):
            opt.load_state_dict(st)
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, skip, step, best = ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"], ckpt["best"]
        metrics.drop_after(step)
        records = list(ckpt["records"])
        rngs = ckpt.get("rng_ranks") or [ckpt["rng"]]
        if len(rngs) != distributed.world_size():
            raise ValueError(
                f"{out_dir / 'last.pt'}: written by {len(rngs)} process(es); resume it with the same number "
                f"(this run has {distributed.world_size()})"
            )
        restored_rng = rngs[distributed.rank()]
        log.info("resumed from %s: epoch %d, batch %d, step %d", out_dir / "last.pt", start_epoch, skip, step)
    elif resume:
        log.info("resume asked but %s does not exist: starting fresh", out_dir / "last.pt")

    def checkpoint(path: Path, epoch: int, batch_in_epoch: int) -> None:
        """last.pt: everything an exact resume needs, every rank's RNG state included (a collective: all
        ranks call this)."""
        rngs = distributed.all_gather_object(rng_state())
        if not main:
            return
        save_checkpoint(
            path,
            {
                **selected(epoch),
                "optimizer": optimizer.state_dict(),
                "extra_optimizers": [o.state_dict() for o in extra_opts],
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rngs[0],
                **({"rng_ranks": rngs} if len(rngs) > 1 else {}),
                "batch_in_epoch": batch_in_epoch,
                "records": records,
            },
        )

    def selected(epoch: int) -> dict[str, Any]:
        """best.pt: the model, its config and where it was selected; no optimiser state (a file to keep)."""
        return {"model": method.state_dict(), "config": config, "epoch": epoch, "step": step, "best": best,
                "metrics": last_eval}  # fmt: skip

    def emit(event: dict[str, Any]) -> None:
        for cb in callbacks:
            cb(event)

    def validate(epoch: int) -> None:
        nonlocal last_eval, best
        method.eval()
        last_eval = evaluate(method)
        metrics.write({"event": "eval", "epoch": epoch, "step": step, **last_eval})
        log.info("eval epoch %d: %s", epoch + 1, _fmt(last_eval))
        score = last_eval.get(select_metric)
        if score is not None and not math.isnan(score) and (best is None or score > best):
            best = score
            save_checkpoint(out_dir / "best.pt", selected(epoch + 1))

    def validate_on_main(epoch: int) -> None:  # the other ranks wait
        if main:
            validate(epoch)
        distributed.barrier()

    if evaluate is not None and not resumed and eval_every:
        validate_on_main(-1)  # the start itself (epoch 0 in the log): what training has to beat on validation

    epoch_extract = None if extract is None else distributed.sharded(extract)  # all ranks' features
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for epoch in range(start_epoch, epochs):
        if skip == 0:
            new = method.on_epoch_start(EpochContext(epoch, epochs, all_records, device, epoch_extract))
            if new is not None:
                records = list(new)
        loader = make_loader(records, epoch, skip)
        if restored_rng is not None:  # after building the loader, exactly where the killed run was
            set_rng_state(restored_rng)
            restored_rng = None
        method.train()
        total = len(loader) + skip if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
        emit({"event": "epoch_start", "epoch": epoch, "epochs": epochs, "total": total, "done": skip})
        sums: dict[str, float] = {}
        n_batches = 0
        t0 = time.perf_counter()
        for i, batch in enumerate(loader, start=skip):
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=use_amp):
                out = step_fn(batch)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch} batch {i}: loss is {loss.item()} ({_fmt(out)})")
            optimizer.zero_grad(set_to_none=True)
            for o in extra_opts:
                o.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            for o in extra_opts:
                scaler.unscale_(o)
            method.before_optimizer_step()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            for o in extra_opts:
                scaler.step(o)
            scaler.update()
            method.after_optimizer_step(batch, out)
            step += 1
            n_batches += 1
            parts = {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.dim() == 0}
            parts = distributed.mean_over_ranks(parts, device)  # the logged losses are the mean over ranks
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            lr = optimizer.param_groups[0]["lr"]
            if log_every and step % log_every == 0:
                metrics.write({"event": "step", "epoch": epoch, "step": step, "lr": lr, **parts})
            emit({"event": "step", "epoch": epoch, "batch": i, "step": step, "lr": lr, **parts})
            if max_steps and step >= max_steps:
                checkpoint(out_dir / "last.pt", epoch, i + 1)
                log.info("stopped at step %d (max_steps); resume with train.resume=true", step)
                return FitResult(epoch, step, best, last_eval, stopped_early=True)
        skip = 0
        if scheduler is not None:
            scheduler.step()
        avg = {k: v / max(n_batches, 1) for k, v in sums.items()}
        row = {"event": "epoch", "epoch": epoch, "step": step, "time_s": time.perf_counter() - t0, **avg}
        row.update(method.epoch_stats())
        metrics.write(row)
        log.info("epoch %d/%d %s", epoch + 1, epochs, _fmt(avg))
        is_last = epoch + 1 == epochs
        if evaluate is not None and ((eval_every and (epoch + 1) % eval_every == 0) or is_last):
            validate_on_main(epoch)
        emit({"event": "epoch_end", "epoch": epoch, **avg, **last_eval})
        checkpoint(out_dir / "last.pt", epoch + 1, 0)
    if main and (evaluate is None or not (out_dir / "best.pt").exists()):
        save_checkpoint(out_dir / "best.pt", selected(epochs))  # no validation: the last model is selected
    distributed.barrier()
    return FitResult(epochs - start_epoch, step, best, last_eval, stopped_early=False)


class _TrainingStep(torch.nn.Module):
    """A method's training_step as `forward`, so DistributedDataParallel can wrap the whole method."""

    def __init__(self, method: torch.nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.method.training_step(batch)


def _ddp_training_step(method: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around the method: parameters broadcast from rank 0 once, gradients averaged over the ranks in
    backward. Buffers are not broadcast: memories and queues are kept equal by the methods themselves."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel).parameters  # the keyword was renamed in torch 2.14
    no_sync = (
        {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(
        _TrainingStep(method), device_ids=[device.index] if device.type == "cuda" else None, **no_sync
    )


def _fmt(d: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={float(v.detach() if torch.is_tensor(v) else v):.4f}"
        for k, v in d.items()
        if isinstance(v, int | float) or (torch.is_tensor(v) and v.dim() == 0)
    )
