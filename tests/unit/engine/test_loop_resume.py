"""fit(): a run killed after N steps and resumed ends bit-identical to an uninterrupted run."""

import json

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidkit.data.dataset import collate
from reidkit.data.sampler import PKSampler
from reidkit.engine.loop import fit
from reidkit.engine.schedule import build_optimizer, build_scheduler
from reidkit.methods.base import Method
from reidkit.types import Record
from reidkit.utils import seed_everything


class _Noisy(Dataset):
    """Fixed images per record plus random noise drawn from the global RNG (like an augmentation)."""

    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        img = torch.randn(3, 8, 4, generator=g) + 0.1 * torch.randn(3, 8, 4)
        r = self.records[i]
        return {"image": img, "pid": r.pid, "camid": r.camid, "index": i, "image_id": -1}


class _Tiny(Method):
    def __init__(self, num_classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(96, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, num_classes)
        )

    def training_step(self, batch):
        logits = self.net(batch.images)
        loss = nn.functional.cross_entropy(logits, batch.pids)
        return {"loss": loss, "ce": loss.detach()}


def _records():
    return [Record(path=f"x{i}", pid=i % 6, camid=i % 2) for i in range(48)]


def _make(records, epoch, skip):
    s = PKSampler([r.pid for r in records], 3, 4, seed=0)
    s.set_epoch(epoch, skip)
    return DataLoader(
        _Noisy(records),
        batch_sampler=s,
        collate_fn=collate,
        num_workers=0,
        generator=torch.Generator().manual_seed(epoch),
    )


def _run(out_dir, max_steps=0, resume=False):
    seed_everything(0)
    m = _Tiny(6)
    opt = build_optimizer(m.param_groups(0.01, 1e-4), "adam", 0.01, 1e-4)
    sch = build_scheduler(opt, epochs=3, warmup_epochs=1, milestones=(2,))
    res = fit(
        m,
        _records(),
        _make,
        optimizer=opt,
        scheduler=sch,
        epochs=3,
        device=torch.device("cpu"),
        out_dir=out_dir,
        resume=resume,
        max_steps=max_steps,
        log_every=1,
    )
    return m, res


def test_resume_is_exact(tmp_path):
    full, res_full = _run(tmp_path / "full")
    assert not res_full.stopped_early and res_full.steps >= 9  # 3 epochs x 3-4 batches
    part, res = _run(tmp_path / "part", max_steps=5)  # killed in the middle of epoch 1
    assert res.stopped_early and res.steps == 5
    resumed, res2 = _run(tmp_path / "part", resume=True)
    assert res2.steps == res_full.steps
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), n

    # the loss curve continues: same per-step losses as the uninterrupted run
    def losses(path):
        return [r["loss"] for r in map(json.loads, open(path / "metrics.jsonl")) if r["event"] == "step"]

    assert losses(tmp_path / "full") == losses(tmp_path / "part")
    _run(tmp_path / "full")  # a fresh run into a used folder starts a new log instead of appending
    assert losses(tmp_path / "full") == losses(tmp_path / "part")
    assert (tmp_path / "part" / "last.pt").exists() and (tmp_path / "part" / "best.pt").exists()


def test_nonfinite_loss_is_an_error(tmp_path):
    class Bad(_Tiny):
        def training_step(self, batch):
            return {"loss": torch.tensor(float("nan"), requires_grad=True)}

    m = Bad(6)
    opt = build_optimizer(m.param_groups(0.01, 0.0), "sgd", 0.01, 0.0)
    import pytest

    with pytest.raises(FloatingPointError, match="epoch 0 batch 0"):
        fit(
            m,
            _records(),
            _make,
            optimizer=opt,
            scheduler=None,
            epochs=1,
            device=torch.device("cpu"),
            out_dir=tmp_path,
        )


def test_resume_after_a_kill_does_not_repeat_logged_steps(tmp_path):
    _run(tmp_path / "full")
    _run(tmp_path / "part", max_steps=5)  # last.pt at step 5
    log = tmp_path / "part" / "metrics.jsonl"
    with open(log, "a") as fh:  # what a kill -9 leaves: steps logged after the last checkpoint
        for step in (6, 7):
            fh.write(json.dumps({"event": "step", "epoch": 1, "step": step, "loss": 9.0}) + "\n")
    _run(tmp_path / "part", resume=True)

    def step_rows(path):
        return [
            (r["step"], r["loss"])
            for r in map(json.loads, open(path / "metrics.jsonl"))
            if r["event"] == "step"
        ]

    assert step_rows(tmp_path / "part") == step_rows(tmp_path / "full")


def test_best_holds_the_model_and_config_only_and_last_what_resume_needs(tmp_path):
    from reidkit.engine.checkpoint import load_checkpoint

    model, _ = _run(tmp_path)
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert set(best) - {"sha256"} == {"model", "config", "epoch", "step", "best", "metrics"}  # + its digest
    assert {"optimizer", "scheduler", "scaler", "rng", "records", "batch_in_epoch"} <= set(last)
    for name, value in model.state_dict().items():  # no validation: best is the last model
        assert torch.equal(best["model"][name], value)
    assert (tmp_path / "best.pt").stat().st_size < (tmp_path / "last.pt").stat().st_size
