"""Mid-epoch resume is exact with data loader workers (their augmentation streams are replayed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.app.train import train
from reidkit.config import load_config
from reidkit.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workers", [2])
def test_mid_epoch_resume_with_workers_is_exact(tmp_path, synth_cache, tiny_overrides, workers):
    base = [*tiny_overrides, f"data.root={synth_cache}", f"data.workers={workers}", "optim.epochs=2"]
    base += ["data.erasing=0.5", "data.flip=0.5"]  # random augmentations drawn in the workers

    def cfg(out: Path, *extra: str):
        return load_config(REPO / "configs/synthetic/ctl.yaml", [*base, f"train.out_dir={out}", *extra])

    train(cfg(tmp_path / "full"))
    full = load_checkpoint(tmp_path / "full" / "last.pt")
    steps = full["step"]
    per_epoch = steps // 2
    assert per_epoch >= 3, "the test needs a stop strictly inside an epoch"
    stop = per_epoch + per_epoch // 2  # inside the second epoch
    assert train(cfg(tmp_path / "part", f"train.max_steps={stop}"))["stopped_early"]
    train(cfg(tmp_path / "part", "train.resume=true"))
    part = load_checkpoint(tmp_path / "part" / "last.pt")
    assert part["step"] == steps
    differ = [k for k, v in full["model"].items() if not torch.equal(v, part["model"][k])]
    assert not differ, f"{len(differ)} of {len(full['model'])} tensors differ, e.g. {differ[:3]}"
