"""The CLI end to end on a tiny synthetic dataset, CPU."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reidkit.cli import app

runner = CliRunner()


def test_help_lists_verbs():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for verb in ("quickstart", "train", "eval", "synth", "datasets"):
        assert verb in res.output


def test_train_then_eval(tiny_run):
    out = tiny_run
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
    assert set(rows) == {
        "image",
        "centroid",
        "centroid_camera_aware",
        "centroid_camera_aware_reference",
        "image_rerank",
    }
    # the eval CLI recomputes exactly what training reported for the same (last) checkpoint
    assert rows["image"]["mAP"] == pytest.approx(metrics["image"]["mAP"], abs=1e-6)


def test_bad_override_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["train", "configs/synthetic/ctl.yaml", "data.batchsize=3"])
    assert res.exit_code != 0
    assert "unknown key(s) ['batchsize']" in str(res.exception)


def test_validation_selects_best_on_training_identities(tmp_path, synth_cache, tiny_overrides):
    """data.val_ids holds out *training* ids; eval rows (the start itself first, as epoch -1) are logged and
    best.pt follows them."""
    from reidkit.engine.checkpoint import load_checkpoint

    out = tmp_path / "val"
    args = [
        "train",
        str(Path(__file__).resolve().parents[2] / "configs/synthetic/ctl.yaml"),
        *tiny_overrides,
        f"data.root={synth_cache}",
        f"train.out_dir={out}",
        "data.val_ids=4",
        "eval.every=1",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["event"] == "eval"]
    assert [r["epoch"] for r in evals] == [-1, 0, 1] and all(0 < r["mAP"] <= 1 for r in evals)
    best = load_checkpoint(out / "best.pt")
    assert best["best"] == max(r["mAP"] for r in evals)
    assert best["epoch"] == 1 + max(evals, key=lambda r: r["mAP"])["epoch"]
    # the held-out identities are not trained on: 16 synthetic ids -> 8 train ids, 4 held out
    last = load_checkpoint(out / "last.pt")
    assert last["model"]["model.head.classifier.weight"].shape[0] == 4
    # the test split is evaluated with the selected model, best.pt
    res = runner.invoke(app, ["eval", str(out / "config.yaml"), "--ckpt", str(out / "best.pt"), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.output[res.output.index("{") :])
    tested = json.loads((out / "test_metrics.json").read_text())
    assert abs(again["image"]["mAP"] - tested["image"]["mAP"]) < 1e-6


def test_version():
    from reidkit import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"reidkit {__version__}"
