"""BNNeck, GeM and EmbeddingHead against hand-computed batch norm / pooling."""

from __future__ import annotations

import pytest
import torch

from reidkit.models.heads import BNNeck, EmbeddingHead, GeM, make_pooling

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bnneck_train_uses_batch_stats_eval_uses_running_stats() -> None:
    torch.manual_seed(0)
    neck = BNNeck(5)
    assert not neck.bias.requires_grad and neck.weight.requires_grad
    assert torch.equal(neck.weight.data, torch.ones(5)) and torch.equal(neck.bias.data, torch.zeros(5))
    x = torch.randn(16, 5) * 3 + 2  # [B, C]
    neck.train()
    y = neck(x)
    mean, var_b = x.mean(0), x.var(0, unbiased=False)
    assert torch.allclose(y, (x - mean) / torch.sqrt(var_b + neck.eps), atol=1e-5)
    # running stats after one step from (0, 1) with momentum 0.1; running_var uses the unbiased variance
    assert torch.allclose(neck.running_mean, 0.1 * mean, atol=1e-6)
    assert torch.allclose(neck.running_var, 0.9 + 0.1 * x.var(0, unbiased=True), atol=1e-5)
    neck.eval()
    z = torch.randn(3, 5)
    ref = (z - neck.running_mean) / torch.sqrt(neck.running_var + neck.eps)
    assert torch.allclose(neck(z), ref, atol=1e-6)


def test_bnneck_bias_stays_frozen_under_training() -> None:
    torch.manual_seed(0)
    neck = BNNeck(4)
    params = [p for p in neck.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.5, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        (neck(torch.randn(8, 4)) * torch.arange(4.0)).pow(2).sum().backward()
        opt.step()
    assert torch.equal(neck.bias.data, torch.zeros(4))
    assert not torch.equal(neck.weight.data, torch.ones(4))


def test_gem_p1_equals_average_pooling_and_large_p_tends_to_max() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 5) + 0.1  # positive, as after a ReLU  [B, C, h, w]
    assert torch.allclose(GeM(p=1.0)(x), x.mean(dim=(2, 3)), atol=1e-6)
    gem_hi = GeM(p=60.0)(x)
    assert torch.allclose(gem_hi, x.amax(dim=(2, 3)), rtol=0.05)
    gem = GeM()
    assert gem.p.requires_grad and gem.p.item() == pytest.approx(3.0)
    # power mean inequality: avg <= GeM(3) <= max
    g3 = gem(x)
    assert (g3 >= x.mean(dim=(2, 3)) - 1e-6).all() and (g3 <= x.amax(dim=(2, 3)) + 1e-6).all()
    g3.sum().backward()
    assert gem.p.grad is not None and torch.isfinite(gem.p.grad)


def test_make_pooling_names() -> None:
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(make_pooling("max")(x), x.amax(dim=(2, 3)))
    assert torch.allclose(make_pooling("avg")(x), x.mean(dim=(2, 3)), atol=1e-6)
    with pytest.raises(ValueError, match="unknown pooling 'sum'.*avg.*max.*gem"):
        make_pooling("sum")


@pytest.mark.parametrize("pooling", ["avg", "max", "gem"])
def test_embedding_head_dict_same_in_train_and_eval(pooling: str) -> None:
    torch.manual_seed(0)
    head = EmbeddingHead(8, 5, pooling=pooling)
    fmap = torch.rand(4, 8, 3, 2)  # [B, C, h, w]
    for train in (True, False):
        head.train(train)
        out = head(fmap)
        assert set(out) == {"feat", "bn_feat", "logits"}
        assert [tuple(out[k].shape) for k in ("feat", "bn_feat", "logits")] == [(4, 8), (4, 8), (4, 5)]
        assert torch.allclose(out["feat"], make_pooling(pooling)(fmap), atol=1e-6)
        assert torch.allclose(out["bn_feat"], head.neck(out["feat"]), atol=1e-6)
        assert torch.allclose(out["logits"], out["bn_feat"] @ head.classifier.weight.t(), atol=1e-6)


def test_embedding_head_init_and_options() -> None:
    torch.manual_seed(0)
    head = EmbeddingHead(512, 1000)
    assert head.classifier.bias is None
    assert head.classifier.weight.std().item() == pytest.approx(0.001, rel=0.02)
    assert head.classifier.weight.mean().abs().item() < 1e-5
    no_cls = EmbeddingHead(8, 0)
    assert "logits" not in no_cls(torch.rand(2, 8, 2, 2))
    no_neck = EmbeddingHead(8, 3, neck=False)
    out = no_neck(torch.rand(2, 8, 2, 2))
    assert torch.equal(out["bn_feat"], out["feat"])
    with pytest.raises(ValueError, match=r"\[B, 8, h, w\]"):
        no_neck(torch.rand(2, 7, 2, 2))
