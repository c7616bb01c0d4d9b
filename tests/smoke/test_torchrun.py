"""`torchrun --nproc_per_node 2 -m reidkit train` on the CPU: it trains, rank 0 writes one metrics row per
step, `world size 2` in train.log and the test metrics of one process; a killed rank ends the run with an
error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reidkit.cli import app

REPO = Path(__file__).resolve().parents[2]


def _torchrun(out: Path, overrides: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "reidkit", "train", str(REPO / "configs/synthetic/ctl.yaml"), f"train.out_dir={out}",
        *overrides,
    ]  # fmt: skip


def test_two_processes_train_and_report_like_one(tmp_path, tiny_overrides, synth_cache):
    out = tmp_path / "run"
    args = [*tiny_overrides, f"data.root={synth_cache}", "optim.iters_per_epoch=3"]
    res = subprocess.run(_torchrun(out, args), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "world size 2 (backend gloo)" in (out / "train.log").read_text()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["event"] == "step"] == list(range(1, 7))  # 2 epochs x 3 steps, once
    tested = json.loads((out / "test_metrics.json").read_text())
    # the same checkpoint evaluated by one process gives the same numbers
    one = CliRunner().invoke(
        app, ["eval", str(out / "config.yaml"), "--ckpt", str(out / "best.pt"), "--centroids", "--json"]
    )
    assert one.exit_code == 0, one.output
    single = json.loads(one.output)
    assert single["image"] == tested["image"] and single["centroid"] == tested["centroid"]


def test_a_killed_rank_ends_the_run_with_an_error(tmp_path, tiny_overrides, synth_cache):
    out = tmp_path / "run"
    args = [*tiny_overrides, f"data.root={synth_cache}", "optim.epochs=50", "optim.iters_per_epoch=5"]
    agent = subprocess.Popen(
        _torchrun(out, args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 300
    while not (out / "metrics.jsonl").is_file() and time.time() < deadline and agent.poll() is None:
        time.sleep(0.5)
    assert agent.poll() is None, agent.communicate()[0][-3000:]
    workers = subprocess.run(["pgrep", "-P", str(agent.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2
    os.kill(int(workers[-1]), signal.SIGKILL)
    try:
        log, _ = agent.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        agent.kill()
        pytest.fail("the run hung after one rank was killed")
    assert agent.returncode != 0 and "SIGKILL" in log
