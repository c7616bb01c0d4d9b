"""Training speed on the CPU (or a GPU): where a CTL step's time goes, measured in one run.

For each backbone and variant it times, on the same P x K batches:
  raw     a plain PyTorch step (forward, losses, backward, both optimisers) on batches held in memory;
  engine  the same batches through `reidkit.engine.fit` (AMP scaler, hooks, logging, callbacks);
  loader  the recipe's train DataLoader alone (decode + augment + collate with `data.workers` workers),
          with the time to its first batch (paid once per epoch: the loader is rebuilt for each epoch).
Variants: the default model, `channels_last` memory format, and `model.freeze_stages=2`.

    python bench/bench_train.py                          # OSNet x0.25 and ResNet-50, 256 x 128, 64 images
    python bench/bench_train.py --backbones osnet_x0_25 --data cuhk03 --root ../shared/data/cuhk03_detected

Prints a table and writes bench/results/bench_train.json. Times are medians over `--steps` steps after
`--warmup` steps; compare rows of one run (shared machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from reidkit.app import build
from reidkit.config import Config, OptimConfig, from_dict
from reidkit.data.subsets import relabel
from reidkit.engine.loop import fit
from reidkit.types import Batch
from reidkit.utils import resolve_device

HERE = Path(__file__).resolve().parent
VARIANTS = ("default", "channels_last", "freeze_stages=2")
BENCH_OPTIM = OptimConfig(warmup_epochs=0, milestones=())  # the same optimiser for the raw and engine loops


def make_config(args: argparse.Namespace, backbone: str, variant: str) -> Config:
    data = {"format": args.data, "height": args.height, "width": args.width, "p": args.p, "k": args.k}
    data["workers"] = args.workers
    if args.root:
        data["root"] = args.root
    model = {"backbone": backbone, "weights": None, "freeze_bn": True}
    if variant == "freeze_stages=2":
        model["freeze_stages"] = 2
    return from_dict(
        {
            "data": data,
            "model": model,
            "method": {"name": "ctl"},
            "optim": {"epochs": 1, "warmup_epochs": 0, "milestones": []},
            "train": {"device": args.device, "log_every": 20},
        }
    )


def time_loader(cfg: Config, records, device: torch.device, n: int) -> tuple[float, float, list[Batch]]:
    """(seconds to the first batch, median seconds per later batch, the batches) of the recipe's loader."""
    loader = build.train_loaders(cfg, device)(records, 0, 0)
    it = iter(loader)
    t0 = time.perf_counter()
    batches = [next(it)]
    first = time.perf_counter() - t0
    gaps = []
    for _ in range(n - 1):
        t = time.perf_counter()
        batches.append(next(it))
        gaps.append(time.perf_counter() - t)
    del it
    return first, statistics.median(gaps) if gaps else float("nan"), batches


def raw_steps(method, batches: list[Batch], device: torch.device, channels_last: bool) -> list[float]:
    """A plain PyTorch loop: forward, losses, backward, optimiser steps; seconds per step."""
    opt, _ = build.build_optimisation(method, BENCH_OPTIM)
    extra = method.extra_optimizers()
    method.train()
    times = []
    for b in batches:
        b = b.to(device)
        if channels_last:
            b = Batch(**{**b.__dict__, "images": b.images.contiguous(memory_format=torch.channels_last)})
        _sync(device)
        t = time.perf_counter()
        out = method.training_step(b)
        opt.zero_grad(set_to_none=True)
        for e in extra:
            e.zero_grad(set_to_none=True)
        out["loss"].backward()
        method.before_optimizer_step()
        opt.step()
        for e in extra:
            e.step()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def engine_steps(
    method, records, batches: list[Batch], device: torch.device, channels_last: bool
) -> list[float]:
    """The same batches through `fit` (one epoch); seconds between consecutive step events."""
    if channels_last:
        batches = [
            Batch(**{**b.__dict__, "images": b.images.contiguous(memory_format=torch.channels_last)})
            for b in batches
        ]
    opt, sched = build.build_optimisation(method, BENCH_OPTIM)
    stamps: list[float] = []

    def on_event(ev: dict) -> None:
        if ev["event"] in ("epoch_start", "step"):
            _sync(device)
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        fit(
            method,
            records,
            lambda recs, epoch, skip: batches,
            optimizer=opt,
            scheduler=sched,
            epochs=1,
            device=device,
            out_dir=tmp,
            callbacks=[on_event],
        )
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_one(args: argparse.Namespace, backbone: str, variant: str, split) -> dict:
    cfg = make_config(args, backbone, variant)
    device = resolve_device(cfg.train.device)
    records, _ = relabel(split.train)
    n_cls = len({r.pid for r in records})
    n = args.warmup + args.steps
    first, per_batch, batches = time_loader(cfg, records, device, n)
    channels_last = variant == "channels_last"
    row = {"backbone": backbone, "variant": variant, "loader_first_s": first, "loader_batch_s": per_batch}
    for name, fn in (("raw", raw_steps), ("engine", engine_steps)):
        torch.manual_seed(0)
        method = build.build_method(cfg, n_cls).to(device)
        if channels_last:
            method = method.to(memory_format=torch.channels_last)
        if name == "raw":
            times = fn(method, batches, device, channels_last)
        else:
            times = fn(method, records, batches, device, channels_last)
        row[f"{name}_step_s"] = statistics.median(times[args.warmup :])
    row["engine_overhead"] = row["engine_step_s"] / row["raw_step_s"] - 1.0
    row["loader_vs_step"] = row["loader_batch_s"] / row["engine_step_s"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default="osnet_x0_25,resnet50")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--data", default="synthetic", help="reader name, or synthetic (built in)")
    ap.add_argument("--root", default=None)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="the recipes' data.workers")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_train.json")
    args = ap.parse_args()
    cfg = make_config(args, "osnet_x0_25", "default")
    split = build.load_split(cfg.data)
    rows = []
    for backbone in args.backbones.split(","):
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                sys.exit(f"--variants: unknown variant {variant!r}; valid: {list(VARIANTS)}")
            print(f"running {backbone} / {variant} ...", file=sys.stderr, flush=True)
            rows.append(bench_one(args, backbone, variant, split))
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    head = (
        f"{'backbone':<14}{'variant':<17}{'raw s/step':>11}{'engine s/step':>14}{'overhead':>10}"
        f"{'loader s/batch':>15}{'loader/step':>12}{'1st batch s':>12}"
    )
    print(f"{args.p * args.k} images of {args.height}x{args.width}, {torch.get_num_threads()} threads")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['backbone']:<14}{r['variant']:<17}{r['raw_step_s']:>11.3f}{r['engine_step_s']:>14.3f}"
            f"{r['engine_overhead']:>+10.1%}{r['loader_batch_s']:>15.3f}{r['loader_vs_step']:>12.2f}"
            f"{r['loader_first_s']:>12.2f}"
        )
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
