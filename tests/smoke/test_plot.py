"""`reidkit plot RUN`: loss and validation curves of a run into a PNG; a damaged metrics.jsonl is named."""

from __future__ import annotations

import shutil

from PIL import Image
from typer.testing import CliRunner

from reidkit.cli import app
from reidkit.viz import read_metrics


def test_plot_writes_the_curves_of_a_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / "metrics.jsonl", run)
    rows = read_metrics(run / "metrics.jsonl")
    assert any(r["event"] == "step" for r in rows)
    res = CliRunner().invoke(app, ["plot", str(run)])
    assert res.exit_code == 0, res.output
    with Image.open(run / "curves.png") as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 200


def test_a_damaged_metrics_file_is_named(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"event": "step", "step": 1, "loss": 2.0}\n{oops\n')
    res = CliRunner().invoke(app, ["plot", str(tmp_path)])
    assert res.exit_code != 0 and "metrics.jsonl:2" in str(res.exception)
