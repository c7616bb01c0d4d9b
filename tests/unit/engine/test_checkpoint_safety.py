"""Checkpoints are untrusted: loading runs no code, damage is detected, bad files get one clear error."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reidkit.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from reidkit.types import Record


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": _Payload(marker)}, path)
    return path, marker


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    path, marker = _malicious(tmp_path)
    with pytest.raises(CheckpointError, match=r"evil.pt: refused: it holds Python objects"):
        load_checkpoint(path)
    assert not marker.exists()


def _state() -> dict:
    return {
        "model": {"w": torch.full((4096,), 7.0), "b": torch.arange(5)},
        "records": [Record("a.jpg", 3, 1), Record("b.jpg", 4, 0, text="a caption", image_id=2)],
        "config": {"optim": {"lr": 3.5e-4, "milestones": [40, 70]}},
        "rng": rng_state(),
        "best": None,
    }


def test_round_trip_keeps_records_values_and_rng(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = _state()
    save_checkpoint(tmp_path / "c.pt", state)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["records"] == state["records"] and isinstance(loaded["records"][0], Record)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["config"] == state["config"]
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_flipped_byte_in_tensor_data_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state())
    raw = bytearray(path.read_bytes())
    pattern = np.full(64, 7.0, dtype=np.float32).tobytes()  # inside the 4096 sevens of model.w
    at = raw.find(pattern)
    assert at >= 0
    raw[at + 10] ^= 0x01
    path.write_bytes(bytes(raw))
    assert torch.load(path, weights_only=True)["model"]["w"].sum() != 7.0 * 4096  # loads, silently changed
    with pytest.raises(CheckpointError, match="digest mismatch"):
        load_checkpoint(path)


def test_empty_truncated_and_foreign_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt: empty file"):
        load_checkpoint(empty)
    good = tmp_path / "good.pt"
    save_checkpoint(good, _state())
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(CheckpointError, match="not a reidkit checkpoint"):
        load_checkpoint(plain)
    undigested = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, undigested)
    with pytest.raises(CheckpointError, match="no content digest"):
        load_checkpoint(undigested)


@pytest.mark.parametrize("verb", [["export", "--onnx", "{out}"], ["eval", "{cfg}"]])
def test_cli_refuses_a_malicious_checkpoint_in_one_line(tmp_path: Path, verb: list[str]) -> None:
    path, marker = _malicious(tmp_path)
    cfg = Path(__file__).resolve().parents[3] / "configs/synthetic/ctl.yaml"
    args = [a.format(out=tmp_path / "m.onnx", cfg=cfg) for a in verb] + ["--ckpt", str(path)]
    env = {k: v for k, v in os.environ.items() if k != "REIDKIT_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-m", "reidkit.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not marker.exists()
    err = " ".join(proc.stderr.split())
    assert err.startswith("error:") and "evil.pt: refused" in err, err
    assert "Traceback" not in proc.stderr + proc.stdout
