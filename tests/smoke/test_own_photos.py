"""Search your own photos: index a plain folder of unlabelled images (recursively, any names), search it,
embed it; a sideways phone photo (EXIF orientation) is found as its upright twin."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reidkit.cli import app
from reidkit.data.dataset import EXIF_ORIENTATION

runner = CliRunner()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, synth_cache, tiny_run):
    """A folder with subfolders of arbitrary names; `twin.png` is `upright.png` stored sideways + EXIF tag."""
    root = tmp_path_factory.mktemp("my photos")
    gallery = sorted(next(synth_cache.glob("synthetic-*")).glob("bounding_box_test/*.jpg"))[:12]
    for i, src in enumerate(gallery):
        sub = root / ("holiday" if i % 2 else "2024/garden")
        sub.mkdir(parents=True, exist_ok=True)
        Image.open(src).convert("RGB").save(sub / f"IMG_{i:04d}.png")
    upright = Image.open(gallery[0]).convert("RGB")
    upright.save(root / "upright.png")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # shown after a 90 degree clockwise turn
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "holiday" / "twin.png", exif=exif)
    return root


def test_index_and_search_a_plain_folder(photos, tiny_run, tmp_path):
    idx = tmp_path / "idx"
    ckpt = str(tiny_run / "best.pt")
    res = runner.invoke(
        app,
        ["index", "build", "--ckpt", ckpt, "--data", str(photos), "--format", "images", "--out", str(idx)],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "14 entries" in res.output  # 12 photos in two subfolders + the upright one + its twin
    res = runner.invoke(
        app, ["search", "--index", str(idx), "--ckpt", ckpt, "--image", str(photos / "upright.png"), "--json"]
    )
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)
    top2 = {h["path"].rsplit("/", 1)[-1] for h in hits[:2]}
    assert top2 == {"upright.png", "twin.png"}
    assert hits[1]["score"] == pytest.approx(hits[0]["score"], abs=1e-5) and hits[0]["score"] > 0.999


def test_embed_a_folder(photos, tiny_run, tmp_path):
    out = tmp_path / "feats.npz"
    res = runner.invoke(
        app, ["embed", "--ckpt", str(tiny_run / "best.pt"), "--images", str(photos), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    with np.load(out) as f:
        feats, paths, sha = f["feats"], list(f["paths"]), str(f["model_sha256"])
    assert feats.shape[0] == len(paths) == 14 and feats.dtype == np.float32 and len(sha) == 64
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    names = [p.rsplit("/", 1)[-1] for p in paths]
    np.testing.assert_allclose(feats[names.index("twin.png")], feats[names.index("upright.png")], atol=1e-5)


def test_a_folder_without_images_is_named(tmp_path, tiny_run):
    (tmp_path / "notes.txt").write_text("no pictures here")
    res = runner.invoke(
        app, ["embed", "--ckpt", str(tiny_run / "best.pt"), "--images", str(tmp_path), "--out", "x.npz"]
    )
    assert res.exit_code != 0 and "no image files" in str(res.exception)


def test_search_with_rerank(photos, tiny_run, tmp_path):
    idx = tmp_path / "idx"
    ckpt = str(tiny_run / "best.pt")
    build = ["index", "build", "--ckpt", ckpt, "--data", str(photos), "--format", "images", "--out", str(idx)]
    assert runner.invoke(app, build).exit_code == 0
    query = ["search", "--index", str(idx), "--ckpt", ckpt, "--image", str(photos / "upright.png"), "-k", "5"]
    plain = json.loads(runner.invoke(app, [*query, "--json"]).output)
    res = runner.invoke(app, [*query, "--rerank", "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    hits = json.loads(res.output)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert {h["path"].rsplit("/", 1)[-1] for h in hits[:2]} == {"upright.png", "twin.png"}  # still first
    assert len({h["id"] for h in hits}) == 5 and {h["id"] for h in hits[:2]} == {h["id"] for h in plain[:2]}


def test_the_results_table_names_no_placeholder_identity(photos, tiny_run, tmp_path):
    idx = tmp_path / "idx"
    ckpt = str(tiny_run / "best.pt")
    build = ["index", "build", "--ckpt", ckpt, "--data", str(photos), "--format", "images", "--out", str(idx)]
    assert runner.invoke(app, build).exit_code == 0
    res = runner.invoke(
        app, ["search", "--index", str(idx), "--ckpt", ckpt, "--image", str(photos / "upright.png")]
    )
    assert res.exit_code == 0 and "similarity" in res.output
    rows = [line for line in res.output.splitlines() if "upright.png" in line or "twin.png" in line]
    assert rows and all(" -1 " not in row for row in rows)  # unlabelled: "-", not -1
