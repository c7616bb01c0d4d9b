"""The README's "use it from Python" lines work as written (on the tiny run's checkpoint)."""

from __future__ import annotations

import numpy as np

import reidkit


def test_readme_python_lines(tiny_run, synth_cache, tmp_path):
    photos = next(synth_cache.glob("synthetic-*")) / "query"
    ckpt = tiny_run / "best.pt"
    # the README's lines, with its paths replaced by the test's
    dev = reidkit.device("auto")
    reidkit.build_index(ckpt, reidkit.image_records(photos), tmp_path / "my_index", device=dev)
    index, cfg, model = reidkit.open_index(tmp_path / "my_index", ckpt, dev)
    hits = reidkit.search(index, cfg, model, dev, image=next(photos.glob("*.jpg")), k=5)
    reidkit.embed_folder(ckpt, reidkit.image_records(photos), tmp_path / "feats.npz", device=dev)
    assert len(hits) == 5 and hits[0]["score"] >= hits[-1]["score"]
    assert hits[0]["score"] > 0.999  # the query image is in the indexed folder
    with np.load(tmp_path / "feats.npz") as f:
        assert f["feats"].shape[0] == len(index)
    assert set(reidkit.__all__) >= {"train", "load_config", "search"}
