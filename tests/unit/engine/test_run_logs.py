"""Per-run logs: a fresh run starts new train.log / TensorBoard events, a resumed one continues them."""

import logging
import sys
import types

import torch

from reidkit.cli import _setup_logging
from reidkit.engine.loop import _Metrics


def _log_lines(path, text, append):
    _setup_logging(log_file=path, append=append)
    logging.getLogger("reidkit.test").info(text)
    for h in list(logging.getLogger().handlers):
        h.flush()
        if isinstance(h, logging.FileHandler):
            h.close()
            logging.getLogger().removeHandler(h)
    return path.read_text()


def test_train_log_is_per_run(tmp_path):
    log = tmp_path / "train.log"
    assert "first" in _log_lines(log, "first", append=False)
    text = _log_lines(log, "second", append=False)
    assert "second" in text and "first" not in text
    text = _log_lines(log, "third", append=True)
    assert "second" in text and "third" in text


def test_fresh_run_starts_new_tensorboard_events(tmp_path, monkeypatch):
    written = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter (an optional dependency)
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, *a):
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
    assert written == [("loss", 1.5, 3)]
