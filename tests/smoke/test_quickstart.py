"""`reidkit quickstart` end to end on a tiny synthetic set: quickstart.json and the next commands."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from reidkit.cli import app


def test_quickstart_writes_untrained_and_trained_metrics(tmp_path, synth_cache, tiny_overrides):
    out = tmp_path / "qs"
    args = ["quickstart", "--out", str(out), *tiny_overrides, f"data.root={synth_cache}"]
    res = CliRunner().invoke(app, args, terminal_width=400)
    assert res.exit_code == 0, res.output + repr(res.exception)
    saved = json.loads((out / "quickstart.json").read_text())
    assert set(saved) == {"untrained", "trained"}
    for part in ("untrained", "trained"):
        assert set(saved[part]) >= {"image", "centroid"}
        assert 0.0 <= saved[part]["image"]["mAP"] <= 1.0
    # the trained metrics are the final model's test metrics, recomputed here from its checkpoint
    res_eval = CliRunner().invoke(
        app, ["eval", str(out / "config.yaml"), "--ckpt", str(out / "last.pt"), "--json"], terminal_width=400
    )
    assert res_eval.exit_code == 0, res_eval.output
    again = json.loads(res_eval.output[res_eval.output.index("{") :])
    assert abs(again["image"]["mAP"] - saved["trained"]["image"]["mAP"]) < 1e-6
    assert saved["trained"]["image"]["mAP"] != saved["untrained"]["image"]["mAP"]
    # it ends with the two commands that index the synthetic gallery and open the web page
    text = " ".join(res.output.split())
    assert f"reidkit index build --ckpt {out / 'best.pt'} --data" in text
    assert f"--format market1501 --out {out / 'gallery_index'}" in text
    assert f"reidkit serve --index {out / 'gallery_index'} --ckpt {out / 'best.pt'}" in text
