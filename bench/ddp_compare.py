"""One process vs two (torchrun, gloo on the CPU) on the same recipe: losses per step and final test metrics.

With `optim.batch_scope=global` (the default) the two processes train on the same global P x K batches as
the one process, each on half of the identities of every batch; gradients are averaged over the ranks. What
still differs: BatchNorm in train mode sees a rank's half batch (model.sync_bn on CUDA), batch-hard mining
(triplet, centroid triplet) looks inside a rank's half, and rank 1 draws its own augmentations.

    python bench/ddp_compare.py                         # CTL and Cluster-Contrast on the synthetic set
    python bench/ddp_compare.py --recipes ctl --epochs 4

Prints a table and writes bench/results/ddp_compare.json. Runs into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RECIPES = {"ctl": "configs/synthetic/ctl.yaml", "cc": "configs/synthetic/cc.yaml"}


def run(recipe: str, procs: int, out: Path, overrides: list[str]) -> dict:
    """Train the recipe with `procs` processes; returns per-step losses, final metrics and wall time."""
    launcher = (
        ["torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), "-m"] if procs > 1 else []
    )
    cmd = [
        sys.executable,
        "-m",
        *launcher,
        "reidkit",
        "train",
        str(REPO / RECIPES[recipe]),
        f"train.out_dir={out}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // procs))}
    t0 = time.perf_counter()
    subprocess.run(
        [*cmd, "train.log_every=1", *overrides], check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"]: r["loss"] for r in rows if r.get("event") == "step"}
    epochs = [{k: v for k, v in r.items() if k != "time_s"} for r in rows if r.get("event") == "epoch"]
    test = json.loads((out / "test_metrics.json").read_text())
    return {"loss": steps, "epochs": epochs, "test": test, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overrides = [
        f"optim.epochs={args.epochs}",
        f"train.seed={args.seed}",
        "data.workers=0",
        f"optim.milestones=[{max(args.epochs - 2, 1)}]",
    ]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            for procs in (1, 2):
                results[f"{recipe}/{procs}"] = run(recipe, procs, Path(tmp) / f"{recipe}_{procs}", overrides)
    print(
        f"{'recipe':8} {'procs':>5} {'wall s':>7} {'loss @1':>8} {'loss @mid':>9} {'loss @last':>10} "
        f"{'test mAP':>8} {'R1':>6}"
    )
    for key, r in results.items():
        recipe, procs = key.split("/")
        if "clusters" in r["epochs"][-1]:
            print(f"  {key} clusters per epoch: {[int(e['clusters']) for e in r['epochs']]}")
        steps = sorted(r["loss"])
        mid = steps[len(steps) // 2]
        image = r["test"]["image"]
        print(
            f"{recipe:8} {procs:>5} {r['wall_s']:7.0f} {r['loss'][steps[0]]:8.3f} {r['loss'][mid]:9.3f} "
            f"{r['loss'][steps[-1]]:10.3f} {image['mAP']:8.4f} {image['R1']:6.4f}"
        )
    out = HERE / "results" / "ddp_compare.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "runs": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
