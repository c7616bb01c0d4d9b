"""Two trainings into one run folder: the second fails at once, naming the folder and the holder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reidkit.app.train import train
from reidkit.config import load_config
from reidkit.utils import RunLockedError, run_lock

HOLD = (
    "import sys, time\nfrom reidkit.utils import run_lock\n"
    "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)"
)


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_training_into_a_locked_folder_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        (out / "train.log").write_text("the first run's log\n")
        cfg = load_config(None, [f"train.out_dir={out}"])
        with pytest.raises(
            RunLockedError, match=rf"{out}: another run is writing into this folder \(pid {proc.pid}\)"
        ):
            train(cfg)
        assert not (out / "config.yaml").exists()  # nothing written by the refused run
        assert (out / "train.log").read_text() == "the first run's log\n"
    finally:
        proc.kill()
        proc.wait()
    with run_lock(out):  # the killed holder left its lock file behind: not stale, the OS released it
        assert (out / ".lock").read_text().strip() == str(os.getpid())


def test_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with run_lock(tmp_path), run_lock(tmp_path):
        pass
    with run_lock(tmp_path):
        pass
