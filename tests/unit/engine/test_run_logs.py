"""Per-run logs: a fresh run starts new train.log / TensorBoard events, a resumed one continues them."""

import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from reidkit.cli_output import setup_logging
from reidkit.engine.loop import _Metrics, will_resume


@pytest.fixture
def root_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        if isinstance(h, logging.FileHandler):
            h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _log(path: Path, text: str, append: bool) -> str:
    setup_logging(log_file=path, append=append)
    logging.getLogger("reidkit.test").info(text)
    for h in logging.getLogger().handlers:
        h.flush()
    return path.read_text()


def test_train_log_is_per_run(tmp_path: Path, root_logging: None) -> None:
    log = tmp_path / "train.log"
    assert "first" in _log(log, "first", append=False)
    text = _log(log, "second", append=False)
    assert "second" in text and "first" not in text
    text = _log(log, "third", append=True)
    assert "second" in text and "third" in text


def test_will_resume_needs_the_request_and_a_checkpoint(tmp_path: Path) -> None:
    assert not will_resume(tmp_path, True) and not will_resume(tmp_path, False)
    (tmp_path / "last.pt").write_bytes(b"")
    assert will_resume(tmp_path, True) and not will_resume(tmp_path, False)


def test_fresh_run_starts_new_tensorboard_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter (an optional dependency)
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, *a: object) -> None:
            written.append(a)

    monkeypatch.setitem(
        sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter)
    )
    tb = tmp_path / "tb"
    tb.mkdir()
    (tb / "events.out.tfevents.1.host").write_text("old run")
    (tb / "notes.txt").write_text("not ours")
    _Metrics(tmp_path, tensorboard=True, append=True)
    assert (tb / "events.out.tfevents.1.host").exists()  # resumed: the old curve continues
    m = _Metrics(tmp_path, tensorboard=True, append=False)
    assert not (tb / "events.out.tfevents.1.host").exists() and (tb / "notes.txt").exists()
    m.write({"event": "step", "step": 3, "loss": torch.tensor(1.5).item()})
    m.write({"event": "eval", "epoch": 0, "step": 3, "mAP": 0.25})
    assert written == [("train/loss", 1.5, 3), ("val/mAP", 0.25, 3)]  # train and val curves grouped
