"""The quickstart: untrained vs trained CTL on the built-in synthetic set, from an ImageNet start shipped by
an installed package (offline), so a few minutes on a CPU give a real gain."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reidkit.app.build import build_method, load_method, load_split, synthetic_root
from reidkit.app.pictures import ranked_picture
from reidkit.app.train import test_metrics, train
from reidkit.config import from_dict
from reidkit.engine.loop import Callback
from reidkit.utils import atomic_write, resolve_device, seed_everything

# The quickstart recipe; configs/synthetic/ctl.yaml holds the same settings as a file.
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


def quickstart(overrides: list[str], callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Untrained vs trained CTL on the built-in synthetic set. Writes `quickstart.json` ({"untrained",
    "trained"}: test metrics as in test_metrics.json) and a ranked-list picture into the run folder."""
    cfg = from_dict(QUICKSTART, overrides)
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    split = load_split(cfg.data)
    untrained = build_method(cfg, len({r.pid for r in split.train})).to(device)
    before = test_metrics(untrained, split, cfg, device)
    after = train(cfg, callbacks)
    out_dir = Path(cfg.train.out_dir)
    with atomic_write(out_dir / "quickstart.json", "w") as fh:
        json.dump({"untrained": before, "trained": after}, fh, indent=2)
    method = load_method(cfg, out_dir / "last.pt", device)
    step = max(len(split.query) // 8, 1)
    picture = ranked_picture(
        method, list(split.query)[::step][:8], split.gallery, cfg, out_dir / "ranked_lists.png"
    )
    return {
        "untrained": before,
        "trained": after,
        "picture": str(picture),
        "data_root": str(synthetic_root(cfg.data)),
        "checkpoint": str(out_dir / "best.pt"),
    }
