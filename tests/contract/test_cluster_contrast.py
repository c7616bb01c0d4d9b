"""Cluster-Contrast (+ ISE) contract: re-clustering relabels records, one step trains and updates the memory,
save -> load gives identical embeddings and memory, and the method runs inside fit()."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from reidkit.data.dataset import collate
from reidkit.data.sampler import PKSampler
from reidkit.engine.loop import EpochContext
from reidkit.methods.cluster_contrast import ClusterContrast, ClusterContrastConfig
from reidkit.models.model import build_reid_model
from reidkit.types import Batch, Features, Record

N_IDS, PER_ID, N_OUT = 5, 8, 2
KW = {"k1": 8, "k2": 2, "eps": 0.6, "min_samples": 4}  # only 8 images per identity: small k1 and k2


@pytest.fixture(scope="module")
def jaccard():
    return pytest.importorskip("reidkit.cluster.jaccard", reason="cluster/jaccard.py is not in the tree yet")


def _data(dim: int, seed: int = 0):
    """Records plus a fake `extract`: tight clusters around centres sharing a common direction, 2 outliers
    on the opposite side (farther from every cluster than the clusters are from each other), shuffled."""
    g = np.random.default_rng(seed)
    common = g.normal(size=dim)
    centers = common + g.normal(size=(N_IDS, dim))
    pids = np.concatenate([np.repeat(np.arange(N_IDS), PER_ID), 100 + np.arange(N_OUT)])
    feats = np.concatenate([centers[pids[: N_IDS * PER_ID]], -common + g.normal(size=(N_OUT, dim))])
    feats = feats + 0.2 * g.normal(size=feats.shape)
    feats = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)
    records = [Record(path=f"img_{i}.jpg", pid=int(p), camid=i % 2) for i, p in enumerate(pids)]
    perm = g.permutation(len(records))

    def extract(recs):
        assert list(recs) == records
        return Features(feats[perm], pids[perm], np.array([r.camid for r in records])[perm], perm.copy())

    return records, extract, pids, feats


def _method(seed: int = 0, **kw) -> ClusterContrast:
    torch.manual_seed(seed)
    return ClusterContrast(build_reid_model("resnet18", 0, weights=None), **{**KW, **kw})


def _batch(pseudo: list[Record], labels: list[int], seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    idx = [i for lab in labels for i in [j for j, r in enumerate(pseudo) if r.pid == lab][:4]]
    return Batch(
        images=torch.randn(len(idx), 3, 32, 16, generator=g),
        pids=torch.tensor([pseudo[i].pid for i in idx]),
        camids=torch.zeros(len(idx), dtype=torch.long),
        index=torch.tensor(idx),
    )


def test_on_epoch_start_relabels_records(jaccard):
    m = _method()
    records, extract, pids, feats = _data(m.model.dim)
    out = m.on_epoch_start(EpochContext(0, 4, records, torch.device("cpu"), extract))
    assert len(out) == N_IDS * PER_ID and all(r.path != f"img_{i}.jpg" for r in out for i in (40, 41))
    by_path = {r.path: r for r in out}
    pairs = {(int(pids[i]), by_path[r.path].pid) for i, r in enumerate(records) if r.path in by_path}
    assert len(pairs) == N_IDS and {p for _, p in pairs} == set(range(N_IDS))  # a bijection true <-> pseudo
    assert all(by_path[r.path].camid == r.camid for r in records if r.path in by_path)
    assert len(m.memory) == N_IDS
    for true_id, pseudo in pairs:  # memory = normalised mean of the cluster's features
        mean = feats[pids == true_id].mean(0)
        assert np.allclose(m.memory.features[pseudo].numpy(), mean / np.linalg.norm(mean), atol=1e-5)
    st = m.epoch_stats()
    assert st["clusters"] == N_IDS and st["outliers"] == N_OUT and st["ari"] == pytest.approx(1.0)


@pytest.mark.parametrize("ise", [False, True])
def test_one_training_step(jaccard, ise):
    m = _method(ise=ise, ise_k=2)
    records, extract, _, _ = _data(m.model.dim)
    pseudo = m.on_epoch_start(EpochContext(1, 4, records, torch.device("cpu"), extract))
    m.train()
    batch = _batch(list(pseudo), [0, 3])
    opt = torch.optim.Adam(m.param_groups(1e-3, 0.0)[0]["params"], lr=1e-3)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    mem_before = m.memory.features.clone()
    out = m.training_step(batch)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    if ise:
        assert torch.isfinite(out["lp"]) and out["lambda"].item() == pytest.approx(m.current_lambda())
        assert 0 < out["lambda"].item() < 0.5 and out["_feats"].shape[0] == 8 * 3  # 2 supports per sample
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    m.after_optimizer_step(batch, out)
    changed = [n for n, p in m.named_parameters() if not torch.equal(before[n], p.detach())]
    assert any(n.startswith("model.backbone.") for n in changed)
    moved = (m.memory.features - mem_before).abs().sum(1) > 0
    assert moved.tolist() == [i in (0, 3) for i in range(N_IDS)]  # only the batch's clusters
    assert torch.allclose(m.memory.features.norm(dim=1), torch.ones(N_IDS))
    assert int(m.progress[2]) == 1


def test_save_load_gives_identical_embeddings_and_memory():
    m = _method(seed=0, ise=True)
    m.memory.reset(torch.randn(7, m.model.dim))
    m.progress.copy_(torch.tensor([2, 10, 5, 20]))
    m.train()
    m.model(torch.randn(8, 3, 32, 16))  # move the BN running statistics away from their init
    state = m.state_dict()
    fresh = _method(seed=1, ise=True)  # other weights, empty memory
    fresh.load_state_dict(state)
    assert torch.equal(fresh.memory.features, m.memory.features) and len(fresh.memory) == 7
    assert fresh.current_lambda() == m.current_lambda() > 0
    x = torch.randn(4, 3, 32, 16)
    a, b = m.embedders()["image"].embed_images(x), fresh.embedders()["image"].embed_images(x)
    assert torch.equal(a, b) and torch.allclose(a.norm(dim=1), torch.ones(4))


def test_model_with_a_classifier_is_rejected():
    with pytest.raises(ValueError, match="num_classes=0"):
        ClusterContrast(build_reid_model("resnet18", 3, weights=None))


def test_config_defaults_match_the_constructor():
    cfg = ClusterContrastConfig()
    params = inspect.signature(ClusterContrast).parameters
    for name, value in vars(cfg).items():
        if name != "name":
            assert params[name].default == value, name


class _Images(Dataset):
    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        r = self.records[i]
        img = torch.randn(3, 32, 16, generator=torch.Generator().manual_seed(i))
        return {"image": img, "pid": r.pid, "camid": r.camid, "index": i, "image_id": -1}


def test_runs_inside_fit_and_checkpoint_reloads(jaccard, tmp_path, fit_tiny):
    m = _method(ise=True)
    records, extract, _, _ = _data(m.model.dim)

    def make(recs, epoch, skip):
        s = PKSampler([r.pid for r in recs], 2, 4, seed=0, num_batches=1)
        s.set_epoch(epoch, skip)
        return DataLoader(_Images(recs), batch_sampler=s, collate_fn=collate)

    opt = torch.optim.Adam(m.param_groups(1e-4, 0.0)[0]["params"], lr=1e-4)
    fit_tiny(m, records, make, optimizer=opt, epochs=2, log_every=1, extract=extract)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert len(epochs) == 2 and all(r["clusters"] == N_IDS and r["outliers"] == N_OUT for r in epochs)
    assert epochs[0]["lambda_t"] < epochs[1]["lambda_t"] <= 0.5 and "lp" in epochs[1]
    fresh = _method(seed=3, ise=True)
    fresh.load_state_dict(torch.load(tmp_path / "last.pt", weights_only=False)["model"])
    assert torch.equal(fresh.memory.features, m.memory.features)
