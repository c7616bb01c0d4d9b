"""Distributed training on the CPU (gloo, 2 processes spawned here): DDP gives the parameters of one process
over the same global batches; Cluster-Contrast's pseudo-labels and memory and TextReID's queues stay equal on
every rank; a resumed run equals an uninterrupted one. torchrun itself: tests/smoke/test_torchrun.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from reidkit.data.sampler import PKSampler
from reidkit.data.text import random_word_table
from reidkit.engine import distributed
from reidkit.engine.loop import fit
from reidkit.methods.cluster_contrast import ClusterContrast
from reidkit.methods.ctl import CTL
from reidkit.methods.textreid import TextReIDConfig, build_textreid
from reidkit.models.model import build_reid_model
from reidkit.types import Batch, Features, Record
from reidkit.utils import seed_everything

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, port: int) -> None:
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank)}
    )
    os.environ["WORLD_SIZE"] = str(WORLD)
    torch.set_num_threads(1)
    distributed.init(torch.device("cpu"), "gloo")


def _spawn(fn, *args) -> None:
    mp.start_processes(fn, args=(_free_port(), *args), nprocs=WORLD, start_method="spawn", join=True)


# --------------------------------------------------------------------------------------------- data
def _images(n: int, seed: int = 0, groups: np.ndarray | None = None) -> torch.Tensor:
    """[n, 3, 32, 16]; with `groups`, images of one group are small variations of one picture."""
    g = torch.Generator().manual_seed(seed)
    if groups is None:
        return torch.randn(n, 3, 32, 16, generator=g)
    base = torch.randn(int(groups.max()) + 1, 3, 32, 16, generator=g)
    return base[torch.from_numpy(groups)] + 0.05 * torch.randn(n, 3, 32, 16, generator=g)


def _loader(records: list[Record], images: torch.Tensor, p: int, k: int, steps: int, tokens=None):
    """fit's make_loader: this rank's share of the global P x K batches (the whole batch in one process)."""
    path_index = {r.path: i for i, r in enumerate(records)}

    def make(recs, epoch, skip):
        sampler = PKSampler(
            [r.pid for r in recs],
            p,
            k,
            seed=3,
            num_batches=steps,
            rank=distributed.rank(),
            world_size=distributed.world_size(),
        )
        sampler.set_epoch(epoch, skip)
        for idx in sampler:
            rows = torch.tensor([path_index[recs[i].path] for i in idx])
            extra = {}
            if tokens is not None:
                toks, lengths = tokens
                extra = {"tokens": toks[rows], "lengths": lengths[rows], "image_ids": rows}
            yield Batch(
                images=images[rows],
                pids=torch.tensor([recs[i].pid for i in idx]),
                camids=torch.tensor([recs[i].camid for i in idx]),
                index=rows,
                **extra,
            )

    return make


def _fit(method, records, make, out: Path, epochs: int, **kw) -> None:
    """fit() on the CPU without a scheduler (SGD at lr 0.01 unless an optimizer is given)."""
    opt = kw.pop("optimizer", None) or torch.optim.SGD(method.param_groups(0.01, 0.0), lr=0.01)
    fit(method, records, make, optimizer=opt, scheduler=None, epochs=epochs, device=torch.device("cpu"),
        out_dir=out, **kw)  # fmt: skip


def _ctl() -> CTL:
    """CTL with frozen BatchNorm and no BNNeck (train-mode BN over a rank's sub-batch is the one thing DDP
    cannot reproduce without SyncBatchNorm), CE + center loss: losses that average over the batch."""
    seed_everything(0)
    model = build_reid_model("resnet18", 6, weights=None, freeze_bn=True, neck=False)
    return CTL(model, 6, centroid_triplet=False, triplet_weight=0.0)


CTL_RECORDS = [Record(f"c{i}.jpg", i // 4, i % 2) for i in range(24)]


def _train_ctl(out: Path, *, max_steps: int = 0, resume: bool = False, epochs: int = 1) -> CTL:
    method = _ctl()
    opt = torch.optim.Adam(method.param_groups(1e-3, 5e-4))
    make = _loader(CTL_RECORDS, _images(24), p=4, k=2, steps=3)
    _fit(
        method, CTL_RECORDS, make, out, epochs, optimizer=opt, log_every=1, max_steps=max_steps, resume=resume
    )
    return method


# --------------------------------------------------------------------------------------------- workers
def _ctl_part(rank: int, out: Path) -> None:
    method = _train_ctl(out / "run")
    torch.save(method.state_dict(), out / f"rank{rank}.pt")


def _resume_part(rank: int, out: Path) -> None:
    whole = _train_ctl(out / "whole", epochs=2)
    _train_ctl(out / "part", epochs=2, max_steps=4)  # stops inside the second epoch
    resumed = _train_ctl(out / "part", epochs=2, resume=True)
    torch.save({"whole": whole.state_dict(), "resumed": resumed.state_dict()}, out / f"rank{rank}.pt")


def _cc_part(rank: int, out: Path) -> None:
    groups = np.repeat(np.arange(6), 6)
    records = [Record(f"u{i}.jpg", -1, i % 2) for i in range(len(groups))]
    images = _images(len(groups), seed=1, groups=groups)
    seed_everything(0)
    method = ClusterContrast(
        build_reid_model("resnet18", 0, weights=None, freeze_bn=True), k1=4, k2=2, eps=0.5, min_samples=2
    )
    index = {r.path: i for i, r in enumerate(records)}

    def extract(recs):
        emb = method.embedders()["image"]
        feats = emb.embed_images(images[[index[r.path] for r in recs]]).numpy()
        return Features(
            feats, np.full(len(recs), -1), np.zeros(len(recs), dtype=np.int64), np.arange(len(recs))
        )

    seen: list[list[Record]] = []

    def make(recs, epoch, skip):
        seen.append(list(recs))
        return _loader(records, images, p=2, k=2, steps=2)(recs, epoch, skip)

    _fit(method, records, make, out / "run", epochs=2, log_every=0, extract=extract)
    torch.save(
        {"memory": method.memory.state_dict(), "labels": [[r.pid for r in s] for s in seen]},
        out / f"rank{rank}.pt",
    )


def _textreid_part(rank: int, out: Path) -> None:
    seed_everything(0)
    cfg = TextReIDConfig(gru_hidden=8, embed_dim=16, queue_size=20, momentum=0.9)
    method = build_textreid(cfg, 4, random_word_table(20, 8, seed=5), backbone="resnet18", weights=None)
    records = [Record(f"t{i}.jpg", i // 4, 0, text="x") for i in range(16)]
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(1, 7, (16,), generator=g)
    tokens = torch.randint(2, 20, (16, 6), generator=g)
    tokens[torch.arange(6)[None, :] >= lengths[:, None]] = 0
    make = _loader(records, _images(16), p=4, k=2, steps=3, tokens=(tokens, lengths))
    _fit(method, records, make, out / "run", epochs=1, log_every=0)
    queues = {k: v for k, v in method.state_dict().items() if "queue" in k}
    torch.save(queues, out / f"rank{rank}.pt")


PARTS = {"ctl": _ctl_part, "resume": _resume_part, "cc": _cc_part, "textreid": _textreid_part}


def _worker(rank: int, port: int, out: Path) -> None:
    """One spawn for every check (process start-up and joining cost more than the checks themselves)."""
    _join(rank, port)
    for name, part in PARTS.items():
        (out / name).mkdir(exist_ok=True)
        part(rank, out / name)
    distributed.shutdown()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    _spawn(_worker, out)
    return out


# --------------------------------------------------------------------------------------------- tests
def test_two_processes_train_the_parameters_of_one(ranks, tmp_path):
    r0, r1 = (torch.load(ranks / "ctl" / f"rank{r}.pt") for r in range(WORLD))
    single = _train_ctl(tmp_path / "single").state_dict()  # one process, the same global batches
    start, moved = _ctl().state_dict(), 0
    for name, value in single.items():
        assert torch.equal(r0[name], r1[name]), name  # the ranks agree exactly
        torch.testing.assert_close(r0[name], value, rtol=1e-4, atol=1e-5, msg=name)
        moved += int(not torch.equal(value, start[name]))
    assert moved > 10
    rows = (ranks / "ctl" / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3 + 1  # one row per step (rank 0 only) + the epoch row


def test_resume_under_ddp_equals_the_uninterrupted_run(ranks):
    for r in range(WORLD):
        got = torch.load(ranks / "resume" / f"rank{r}.pt")
        for name, value in got["whole"].items():
            assert torch.equal(got["resumed"][name], value), (r, name)


def test_cluster_contrast_labels_and_memory_are_identical_on_every_rank(ranks):
    r0, r1 = (torch.load(ranks / "cc" / f"rank{r}.pt") for r in range(WORLD))
    assert r0["labels"] == r1["labels"] and len(r0["labels"]) == 2
    assert max(max(s) for s in r0["labels"]) >= 1  # at least two clusters were found
    for name, value in r0["memory"].items():
        assert torch.equal(value, r1["memory"][name]), name


def test_textreid_queues_are_identical_on_every_rank(ranks):
    r0, r1 = (torch.load(ranks / "textreid" / f"rank{r}.pt") for r in range(WORLD))
    assert len(r0) >= 2
    for name, value in r0.items():
        assert torch.equal(value, r1[name]), name
    counts = [int(v) for k, v in r0.items() if k.endswith("count")]
    assert counts == [3 * 8, 3 * 8]  # both queues took 3 steps x the global batch of 8 (both ranks' keys)
