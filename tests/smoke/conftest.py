"""One tiny CTL run on the synthetic set, shared by the smoke tests."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reidkit.cli import app

TINY = [
    "data.synthetic_ids=16",
    "data.height=64",
    "data.width=32",
    "data.p=4",
    "data.k=2",
    "data.workers=0",
    "data.test_batch_size=32",
    "model.backbone=resnet18",
    "model.weights=null",
    "optim.epochs=2",
    "optim.warmup_epochs=1",
    "optim.milestones=[1]",
    "train.log_every=1",
]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """The tiny CTL settings, for tests that train their own variant."""
    return list(TINY)


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_cache) -> Path:
    out = tmp_path_factory.mktemp("run")
    args = [
        "train",
        str(REPO / "configs/synthetic/ctl.yaml"),
        *TINY,
        f"data.root={synth_cache}",
        f"train.out_dir={out}",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out
