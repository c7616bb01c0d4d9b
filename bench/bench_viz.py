"""Where `reidkit viz ranks` spends its time: loading the run, extracting query + gallery features, drawing.

    python bench/bench_viz.py --ckpt runs/quickstart/best.pt          # the synthetic set of the quickstart

Prints a table (seconds per stage, the whole command in-process) and writes bench/results/bench_viz.json.
Measure on an idle machine; compare stages of one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    t0 = time.perf_counter()
    from reidkit.app.build import extract_features, load_split
    from reidkit.app.deploy import load_run
    from reidkit.app.pictures import worst_best_picture

    t_import = time.perf_counter() - t0
    device = torch.device("cpu")
    t = time.perf_counter()
    cfg, method = load_run(args.ckpt, device)
    split = load_split(cfg.data)
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    extract_features(method, list(split.query) + list(split.gallery), cfg, device)
    t_extract = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        worst_best_picture(method, split, cfg, Path(tmp) / "ranks.png", n=args.n, k=args.k)
        t_picture = time.perf_counter() - t
    rows = {
        "import reidkit + torch": t_import,
        "load run + split": t_load,
        f"extract {len(split.query) + len(split.gallery)} images": t_extract,
        "worst_best_picture (extract + draw)": t_picture,
        "viz ranks total (import + load + picture)": t_import + t_load + t_picture,
    }
    for name, sec in rows.items():
        print(f"{name:45} {sec:7.2f} s")
    out = HERE / "results" / "bench_viz.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"ckpt": str(args.ckpt), "seconds": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
