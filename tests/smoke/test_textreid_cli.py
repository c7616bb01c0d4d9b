"""TextReID through `reidkit train`, `eval` and `search --text` on a tiny synthetic caption set."""

import json
from pathlib import Path

from typer.testing import CliRunner

from reidkit.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
TINY = [
    "data.synthetic_ids=16",
    "data.height=32",
    "data.width=16",
    "data.p=4",
    "data.k=2",
    "data.workers=0",
    "data.test_batch_size=64",
    "model.backbone=resnet18",
    "model.weights=null",
    "method.word_table=random",
    "method.random_dim=16",
    "method.gru_hidden=16",
    "method.embed_dim=16",
    "method.queue_size=8",
    "optim.epochs=1",
    "optim.warmup_epochs=0",
    "train.log_every=1",
]


def test_textreid_train_eval_search(tmp_path, synth_cache):
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            str(REPO / "configs/synthetic/textreid.yaml"),
            *TINY,
            f"data.root={synth_cache}",
            f"train.out_dir={out}",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (out / "vocab.json").is_file()
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert set(metrics) == {"text_to_image", "text_to_image_rerank", "image_to_text"}
    t2i = metrics["text_to_image"]
    assert 0 < t2i["mAP"] <= 1 and "Recall@10" in t2i

    res = runner.invoke(app, ["eval", str(out / "config.yaml"), "--ckpt", str(out / "last.pt"), "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    again = json.loads(res.output[res.output.index("{") :])
    assert abs(again["text_to_image"]["mAP"] - t2i["mAP"]) < 1e-6
    # eval.rerank_* reach the re-ranking: lambda 1 keeps only the (row-scaled) cosine distance
    args = [
        "eval",
        str(out / "config.yaml"),
        "--ckpt",
        str(out / "last.pt"),
        "--json",
        "--rerank",
        "eval.rerank_lambda=1.0",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    plain = json.loads(res.output[res.output.index("{") :])
    assert abs(plain["text_to_image_rerank"]["mAP"] - t2i["mAP"]) < 1e-6
    assert abs(metrics["text_to_image_rerank"]["mAP"] - t2i["mAP"]) > 1e-6  # the default lambda re-ranks

    root = next(p for p in synth_cache.iterdir() if p.is_dir() and not p.name.startswith("."))
    res = runner.invoke(
        app,
        [
            "index",
            "build",
            "--ckpt",
            str(out / "last.pt"),
            "--data",
            str(root),
            "--format",
            "cuhkpedes",
            "--out",
            str(tmp_path / "idx"),
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    res = runner.invoke(
        app,
        [
            "search",
            "--index",
            str(tmp_path / "idx"),
            "--ckpt",
            str(out / "last.pt"),
            "--text",
            "a man in a red t-shirt and blue jeans",
            "-k",
            "3",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert len(json.loads(res.output[res.output.index("[") :])) == 3
