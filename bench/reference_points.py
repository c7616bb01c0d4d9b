"""Untrained / off-the-shelf reference points on the real subsets: a table + JSON.

    python bench/reference_points.py [--data ../shared/data] [--only cuhk01]

Rows: an untrained model built from a recipe (ImageNet weights + a fresh BNNeck), the OSNet x0.25 MSMT17
ReID weights from ../shared/weights (a sanity check of the data + evaluation path), and on cuhk03_detected the
starting point of the unsupervised recipes (the OSNet trunk through `cc_osnet.yaml`: its input size and head).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from reidkit.app import build
from reidkit.config import load_config
from reidkit.data.dataset import ImageDataset, collate
from reidkit.data.readers import read_split
from reidkit.data.transforms import build_transforms
from reidkit.evaluation import evaluate
from reidkit.types import Features

REPO = Path(__file__).resolve().parents[1]
SETS = {
    "cuhk03_detected": ("cuhk03", "configs/cuhk03_detected/ctl_mbv2.yaml"),
    "cuhk01": ("cuhk01", "configs/cuhk01/ctl_mbv2.yaml"),
}

CC_START = "configs/cuhk03_detected/cc_osnet.yaml"
OSNET = REPO.parent / "shared" / "weights" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17_torchreid_layout.pth"


def untrained(name: str, data: Path, recipe: str | None = None) -> dict:
    recipe = recipe or SETS[name][1]
    cfg = load_config(REPO / recipe, [f"data.root={data / name}", "data.workers=0"])
    split = build.load_split(cfg.data)
    dev = torch.device("cpu")
    method = build.build_method(cfg, len({r.pid for r in split.train})).eval()
    q = build.extract_features(method, split.query, cfg, dev)
    g = build.extract_features(method, split.gallery, cfg, dev)
    return {"image": evaluate(q, g).as_dict(), "centroid": evaluate(q, g, centroids=True).as_dict()}


def osnet_features(name: str, data: Path, weights: Path) -> tuple[Features, Features]:
    """(query, gallery) features of a test split with the OSNet x0.25 MSMT17 ReID weights, 256x128."""
    from reidkit.models.backbones import make_osnet_reid

    model = make_osnet_reid("osnet_x0_25", weights).eval()
    split = read_split(SETS[name][0], data / name)
    tf = build_transforms((256, 128), train=False)

    def feats(recs) -> Features:
        out, p, c = [], [], []
        for b in DataLoader(ImageDataset(recs, tf), batch_size=64, collate_fn=collate):
            with torch.no_grad():
                out.append(model(b.images))
            p.append(b.pids)
            c.append(b.camids)
        return Features(
            torch.cat(out).numpy(), torch.cat(p).numpy(), torch.cat(c).numpy(), np.arange(len(recs))
        )

    return feats(split.query), feats(split.gallery)


def osnet_msmt17(name: str, data: Path, weights: Path) -> dict:
    q, g = osnet_features(name, data, weights)
    return {"image": evaluate(q, g).as_dict(), "centroid": evaluate(q, g, centroids=True).as_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--weights", type=Path, default=OSNET)
    ap.add_argument("--only", choices=sorted(SETS), default=None)
    args = ap.parse_args()
    rows = []
    for name in [args.only] if args.only else sorted(SETS):
        for label, fn in (
            ("untrained ImageNet MobileNetV2", lambda n=name: untrained(n, args.data)),
            ("OSNet x0.25 MSMT17", lambda n=name: osnet_msmt17(n, args.data, args.weights)),
            *(
                [("cc_osnet.yaml start (no training)", lambda n=name: untrained(n, args.data, CC_START))]
                if name == "cuhk03_detected"
                else []
            ),
        ):
            t = time.perf_counter()
            res = fn()
            rows.append({"data": name, "model": label, "seconds": time.perf_counter() - t, **res})
    print(f"{'data':16} {'model':32} {'mAP':>7} {'R1':>7} {'cent.mAP':>9} {'cent.R1':>8}")
    for r in rows:
        print(
            f"{r['data']:16} {r['model']:32} {r['image']['mAP']:7.4f} {r['image']['R1']:7.4f} "
            f"{r['centroid']['mAP']:9.4f} {r['centroid']['R1']:8.4f}"
        )
    out = REPO / "bench" / "results" / "reference_points.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
