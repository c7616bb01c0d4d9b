"""TextReID contract: one training step on a tiny image-text batch; key encoders only move by EMA;
queues advance; frozen parts stay frozen; save -> load gives identical embeddings; fit() drives it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.data.text import random_word_table
from reidkit.methods.textreid import TextReID, TextReIDConfig, build_textreid
from reidkit.types import Batch, Record

V, DW, B = 20, 8, 8


def make(seed: int = 0, backbone: str = "resnet18", **overrides) -> TextReID:
    torch.manual_seed(seed)
    cfg = TextReIDConfig(**{"gru_hidden": 8, "embed_dim": 16, "queue_size": 12, "momentum": 0.9, **overrides})
    table = random_word_table(V, DW, seed=5)
    return build_textreid(cfg, num_classes=4, word_table=table, backbone=backbone, weights=None)


def make_batch(seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 3, 7, 2, 6, 4, 7, 1])
    tokens = torch.randint(2, V, (B, 7), generator=g)
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0  # padding
    return Batch(
        images=torch.randn(B, 3, 32, 16, generator=g),
        pids=torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]),
        camids=torch.zeros(B, dtype=torch.long),
        index=torch.arange(B),
        tokens=tokens,
        lengths=lengths,
        image_ids=torch.arange(B),
    )


def key_modules(m: TextReID) -> list[torch.nn.Module]:
    return [m.image_k, m.text_k]


def test_one_step_finite_loss_keys_frozen_queues_advance() -> None:
    m = make().train()
    batch = make_batch()
    opt = torch.optim.SGD(m.param_groups(0.1, 0.0), lr=0.1)
    out = m.training_step(batch)
    assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0
    assert {"i2t", "t2i", "align", "id"} <= set(out)
    out["loss"].backward()
    assert all(p.grad is None for k in key_modules(m) for p in k.parameters())
    assert m.text_q.embed.weight.grad is None  # pretrained-style table: frozen
    assert m.image_q.proj[0].weight.grad.abs().sum() > 0 and m.text_q.gru.weight_ih_l0.grad.abs().sum() > 0

    q_old = {n: p.detach().clone() for n, p in m.image_q.named_parameters()}
    k_old = {n: p.detach().clone() for n, p in m.image_k.named_parameters()}
    opt.step()
    assert any(not torch.equal(q_old[n], p) for n, p in m.image_q.named_parameters())
    m.after_optimizer_step(batch, out)
    for n, p in m.image_k.named_parameters():  # θk = m θk + (1 - m) θq(new)
        expected = 0.9 * k_old[n] + 0.1 * dict(m.image_q.named_parameters())[n].detach()
        torch.testing.assert_close(p, expected)
    for (n, b), (_, bq) in zip(m.image_k.named_buffers(), m.image_q.named_buffers(), strict=True):
        assert torch.equal(b, bq), n  # BN statistics copied
    assert torch.equal(m.text_k.embed.weight, m.text_q.embed.weight)
    assert len(m.image_queue) == len(m.text_queue) == B
    feats, ids = m.text_queue.get()
    assert torch.equal(ids, batch.pids) and torch.allclose(feats, out["keys_text"])
    m.training_step(make_batch(2))["loss"].backward()  # the queue now holds negatives
    m.after_optimizer_step(batch, out)
    assert len(m.text_queue) == 12 and int(m.text_queue.ptr) == 4  # wrapped around


def test_param_groups_exclude_key_encoders_and_frozen_table() -> None:
    m = make()
    in_groups = {id(p) for g in m.param_groups(0.1, 5e-4) for p in g["params"]}
    assert not in_groups & {id(p) for k in key_modules(m) for p in k.parameters()}
    assert id(m.text_q.embed.weight) not in in_groups and id(m.classifier.weight) in in_groups


def test_random_table_is_trained_and_queue_zero_works() -> None:
    m = make(word_table="random", queue_size=0).train()
    assert m.text_q.embed.weight.requires_grad
    out = m.training_step(make_batch())
    out["loss"].backward()
    assert m.text_q.embed.weight.grad is not None and torch.isfinite(out["loss"])
    m.after_optimizer_step(make_batch(), out)
    assert len(m.text_queue) == 0


def test_frozen_backbone_is_shared_and_untouched_by_a_step() -> None:
    m = make(freeze_backbone=True).train()
    assert m.image_k.backbone is m.image_q.backbone and not m.image_q.backbone.training
    before = {k: v.clone() for k, v in m.image_q.backbone.state_dict().items()}  # weights + BN buffers
    batch = make_batch()
    opt = torch.optim.SGD(m.param_groups(0.1, 0.0), lr=0.1)
    in_groups = {id(p) for g in m.param_groups(0.1, 0.0) for p in g["params"]}
    assert not in_groups & {id(p) for p in m.image_q.backbone.parameters()}
    k_old = m.image_k.proj[0].weight.detach().clone()
    out = m.training_step(batch)
    with torch.no_grad():  # the key side equals the key encoder's own forward
        torch.testing.assert_close(
            out["keys_image"], torch.nn.functional.normalize(m.image_k(batch.images)["feat"])
        )
    out["loss"].backward()
    assert m.image_q.proj[0].weight.grad.abs().sum() > 0
    opt.step()
    m.after_optimizer_step(batch, out)
    m.embedders()["image"].embed(batch)  # an embedder switching modes must not unfreeze it either
    assert m.training and not m.image_q.backbone.training and not m.image_k.backbone.training
    m.training_step(batch)
    after = m.image_q.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    torch.testing.assert_close(
        m.image_k.proj[0].weight, 0.9 * k_old + 0.1 * m.image_q.proj[0].weight.detach()
    )


def test_save_load_gives_identical_embeddings(tmp_path: Path) -> None:
    m = make().train()
    batch = make_batch()
    out = m.training_step(batch)
    out["loss"].backward()
    m.after_optimizer_step(batch, out)
    torch.save(m.state_dict(), tmp_path / "m.pt")
    other = make(seed=7)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    for mod in ("image", "text"):
        a, b = m.embedders()[mod].embed(batch), other.embedders()[mod].embed(batch)
        assert a.shape == (B, 16) and torch.equal(a, b)
        torch.testing.assert_close(a.norm(dim=1), torch.ones(B))
    assert torch.equal(m.text_queue.get()[0], other.text_queue.get()[0])


def test_text_batch_required() -> None:
    b = make_batch()
    b.tokens = None
    with pytest.raises(ValueError, match="tokens and lengths"):
        make().training_step(b)


def test_fit_runs_steps_and_advances_queues(tmp_path: Path, fit_tiny) -> None:
    m = make(backbone="mobilenetv2")  # smaller checkpoint to write than resnet18
    recs = [Record(f"{i}.jpg", int(p), text="x") for i, p in enumerate(make_batch().pids)]
    opt = torch.optim.Adam(m.param_groups(1e-3, 0.0), lr=1e-3)
    res = fit_tiny(
        m, recs, lambda r, e, s: [make_batch(e * 10 + j) for j in range(s, 2)], optimizer=opt, max_steps=2
    )
    assert res.steps == 2 and len(m.image_queue) == 12 and (tmp_path / "last.pt").is_file()


def test_unfrozen_checkpoint_into_frozen_model_keeps_the_query_backbone() -> None:
    src = make()  # trained without freezing: two different backbones
    with torch.no_grad():
        for p in src.image_k.backbone.parameters():
            p.add_(1.0)
    state = src.state_dict()
    frozen = make(seed=3, freeze_backbone=True)
    frozen.load_state_dict(state)
    assert frozen.image_k.backbone is frozen.image_q.backbone
    for k, v in frozen.image_q.backbone.state_dict().items():
        assert torch.equal(v, state[f"image_q.backbone.{k}"]), k
    batch = make_batch()
    a, b = src.embedders()["image"].embed(batch), frozen.embedders()["image"].embed(batch)
    torch.testing.assert_close(a, b)  # inference uses the query encoder: same embeddings


def test_frozen_model_loads_a_state_without_the_key_backbone_copy() -> None:
    src = make(seed=1, freeze_backbone=True)
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("image_k.backbone.")}
    frozen = make(seed=3, freeze_backbone=True)
    frozen.load_state_dict(state)  # strict: the shared module is fully given by the query's keys
    for k, v in frozen.image_k.backbone.state_dict().items():
        assert torch.equal(v, state[f"image_q.backbone.{k}"]), k
