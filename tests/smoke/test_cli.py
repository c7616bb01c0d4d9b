"""The CLI end to end on a tiny synthetic dataset, CPU."""

import json

import pytest
from typer.testing import CliRunner

from reidkit.cli import app

runner = CliRunner()

TINY = [
    "data.synthetic_ids=16",
    "data.height=64",
    "data.width=32",
    "data.p=4",
    "data.k=2",
    "data.workers=0",
    "data.test_batch_size=32",
    "model.backbone=resnet18",
    "optim.epochs=2",
    "optim.warmup_epochs=1",
    "optim.milestones=[1]",
    "train.log_every=1",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_help_lists_verbs():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for verb in ("quickstart", "train", "eval", "synth", "datasets"):
        assert verb in res.output


def test_train_then_eval(tmp_path, cache):
    out = tmp_path / "run"
    args = ["train", "configs/synthetic/ctl.yaml", *TINY, f"data.root={cache}", f"train.out_dir={out}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    for f in ("config.yaml", "last.pt", "best.pt", "metrics.jsonl", "train.log", "test_metrics.json"):
        assert (out / f).is_file(), f
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert 0.0 < metrics["image"]["mAP"] <= 1.0 and 0.0 < metrics["centroid"]["mAP"] <= 1.0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["event"] == "epoch" for r in rows) == 2

    res = runner.invoke(
        app,
        [
            "eval",
            str(out / "config.yaml"),
            "--ckpt",
            str(out / "last.pt"),
            "--centroids",
            "--rerank",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    start = res.output.index("{")
    rows = json.loads(res.output[start:])
    assert set(rows) == {"image", "centroid", "centroid (camera-aware)", "image + rerank"}
    # the eval CLI recomputes exactly what training reported for the same (last) checkpoint
    assert rows["image"]["mAP"] == pytest.approx(metrics["image"]["mAP"], abs=1e-6)


def test_bad_override_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["train", "configs/synthetic/ctl.yaml", "data.batchsize=3"])
    assert res.exit_code != 0
    assert "unknown key(s) ['batchsize']" in str(res.exception)
