"""User errors on the command line: one line on stderr, no traceback; usage errors exit 2, other failures 1;
--debug (or REIDKIT_DEBUG=1) shows the traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _reidkit(*args: str, pre: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; {pre}from reidkit.cli import main; sys.argv = ['reidkit', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)


def _one_line_error(res: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def test_misspelt_override_names_the_nearest_key():
    _one_line_error(_reidkit("train", "configs/synthetic/ctl.yaml", "optim.epoch=3"), 1, "optim.epochs")


def test_missing_file_and_bad_checkpoint(tmp_path):
    _one_line_error(_reidkit("train", str(tmp_path / "nope.yaml")), 1, "nope.yaml")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    _one_line_error(_reidkit("export", "--ckpt", str(bad), "--onnx", str(tmp_path / "m.onnx")), 1, "bad.pt")


def test_synth_into_a_used_folder_says_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    _one_line_error(_reidkit("synth", "--out", str(tmp_path), "--ids", "4"), 1, "--overwrite")
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_missing_optional_package_gives_the_install_command(tmp_path):
    res = _reidkit("serve", "--index", str(tmp_path), "--ckpt", "x.pt", pre="sys.modules['uvicorn'] = None; ")
    _one_line_error(res, 1, "pip install 'reidkit[serve]'")


def test_usage_errors_exit_2_and_debug_shows_the_traceback(tmp_path):
    res = _reidkit("eval", "configs/synthetic/ctl.yaml")  # --ckpt is required
    assert res.returncode == 2 and "Traceback" not in res.stderr and "--ckpt" in res.stderr
    res = _reidkit("--debug", "train", str(tmp_path / "nope.yaml"))
    assert res.returncode == 1 and "Traceback" in res.stderr
