"""index build -> search -> export -> viz, from the tiny run's checkpoint."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from reidkit.cli import app

runner = CliRunner()


def _synth_root(synth_cache):
    roots = [p for p in synth_cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(roots) == 1
    return roots[0]


def test_index_build_and_search(tiny_run, synth_cache, tmp_path):
    root = _synth_root(synth_cache)
    ckpt = tiny_run / "last.pt"
    res = runner.invoke(
        app,
        [
            "index",
            "build",
            "--ckpt",
            str(ckpt),
            "--data",
            str(root),
            "--out",
            str(tmp_path / "idx"),
            "--format",
            "market1501",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    query = sorted((root / "query").glob("*.jpg"))[0]
    res = runner.invoke(
        app,
        [
            "search",
            "--index",
            str(tmp_path / "idx"),
            "--ckpt",
            str(ckpt),
            "--image",
            str(query),
            "-k",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    hits = json.loads(res.output[res.output.index("[") :])
    assert len(hits) == 5
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # centroid mode: one entry per gallery identity
    res = runner.invoke(
        app,
        [
            "index",
            "build",
            "--ckpt",
            str(ckpt),
            "--data",
            str(root),
            "--out",
            str(tmp_path / "cidx"),
            "--centroids",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    from reidkit.index import GalleryIndex

    gallery_pids = {int(p.name[:4]) for p in (root / "bounding_box_test").glob("*.jpg")}
    assert len(GalleryIndex.load(tmp_path / "cidx")) == len(gallery_pids)


def test_search_refuses_other_checkpoint(tiny_run, synth_cache, tmp_path):
    import shutil

    root = _synth_root(synth_cache)
    runner.invoke(
        app,
        [
            "index",
            "build",
            "--ckpt",
            str(tiny_run / "last.pt"),
            "--data",
            str(root),
            "--out",
            str(tmp_path / "idx"),
        ],
    )
    other = tmp_path / "other.pt"
    shutil.copy(tiny_run / "best.pt", other)
    with open(other, "ab") as fh:
        fh.write(b"\0")  # a different file -> a different hash
    res = runner.invoke(
        app,
        [
            "search",
            "--index",
            str(tmp_path / "idx"),
            "--ckpt",
            str(other),
            "--image",
            str(sorted((root / "query").glob("*.jpg"))[0]),
        ],
    )
    assert res.exit_code != 0


def test_export_onnx_matches_torch(tiny_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import torch

    from reidkit.app.deploy import load_run

    out = tmp_path / "model.onnx"
    res = runner.invoke(app, ["export", "--ckpt", str(tiny_run / "last.pt"), "--onnx", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    cfg, method = load_run(tiny_run / "last.pt", torch.device("cpu"))
    x = torch.randn(3, 3, cfg.data.height, cfg.data.width)  # a batch size other than the export's
    ref = method.embedders()["image"].embed_images(x).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_viz_ranks(tiny_run, tmp_path):
    out = tmp_path / "ranks.png"
    res = runner.invoke(
        app, ["viz", "ranks", "--ckpt", str(tiny_run / "last.pt"), "--out", str(out), "--n", "2", "-k", "4"]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert out.stat().st_size > 1000
    from PIL import Image

    with Image.open(out) as im:
        assert im.width > im.height / 4  # a grid, 4 rows x 5 columns
