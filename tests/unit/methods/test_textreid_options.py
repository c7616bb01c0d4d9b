"""TextReID's reference-code options: key_projection="live" (keys = the query projection, with the key
batch's BN statistics, on the momentum encoder's pooled features) and negatives="queue_only"; checkpoints and
configs without them still load."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidkit.config import load_config
from reidkit.data.text import random_word_table
from reidkit.methods.textreid import ImageEncoder, TextReID, TextReIDConfig
from reidkit.models.text_encoder import TextEncoder
from reidkit.types import Batch

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
B, V, D = 6, 15, 8


def make(freeze_backbone: bool = False, **kw) -> TextReID:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU())
    image = ImageEncoder(backbone, 5, D, "avg", bn=True)
    text = TextEncoder(random_word_table(V, 4, seed=1), 6, D, bn=True)
    m = TextReID(image, text, 3, queue_size=10, freeze_backbone=freeze_backbone, **kw).train()
    with torch.no_grad():  # make every momentum copy differ from its query twin
        for p in (*m.image_k.parameters(), *m.text_k.parameters()):
            p.add_(0.5 * torch.randn_like(p))
    return m


def batch() -> Batch:
    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([4, 2, 5, 1, 3, 5])
    tokens = torch.randint(2, V, (B, 5), generator=g)
    tokens[torch.arange(5)[None, :] >= lengths[:, None]] = 0
    return Batch(
        images=torch.randn(B, 3, 8, 4, generator=g),
        pids=torch.tensor([0, 0, 1, 1, 2, 2]),
        camids=torch.zeros(B, dtype=torch.long),
        index=torch.arange(B),
        tokens=tokens,
        lengths=lengths,
        image_ids=torch.arange(B),
    )


def by_hand(proj: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Linear then BatchNorm1d with the batch's own (biased) statistics, written out."""
    lin, bn = proj[0], proj[1]
    y = x @ lin.weight.t() + lin.bias
    mean, var = y.mean(0), y.var(0, unbiased=False)
    return (y - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def pooled_keys(m: TextReID, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Momentum encoders' unprojected features: image backbone + pool; text encoder with its proj removed."""
    with torch.no_grad():
        img = m.image_k.backbone(b.images).mean(dim=(2, 3))
        text_k = copy.deepcopy(m.text_k)
        text_k.proj = nn.Identity()
        return img, text_k(b.tokens, b.lengths)


@pytest.mark.parametrize("freeze_backbone", [False, True])
def test_live_keys_are_the_query_projection_of_momentum_features(freeze_backbone: bool) -> None:
    m = make(freeze_backbone, key_projection="live")
    b = batch()
    k_state = copy.deepcopy(m.image_k.proj.state_dict()), copy.deepcopy(m.text_k.proj.state_dict())
    img, txt = pooled_keys(m, b)
    out = m.training_step(b)
    torch.testing.assert_close(out["keys_image"], F.normalize(by_hand(m.image_q.proj, img), dim=1))
    torch.testing.assert_close(out["keys_text"], F.normalize(by_hand(m.text_q.proj, txt), dim=1))
    # the momentum projections are neither used nor changed by the step
    for mod, saved in zip((m.image_k.proj, m.text_k.proj), k_state, strict=True):
        for name, t in mod.state_dict().items():
            if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                assert torch.equal(t, saved[name]), name
    with torch.no_grad():
        for p in (*m.image_k.proj.parameters(), *m.text_k.proj.parameters()):
            p.mul_(-3.0)  # scrambling them changes nothing
    again = m.training_step(b)
    torch.testing.assert_close(again["keys_image"], out["keys_image"])
    torch.testing.assert_close(again["keys_text"], out["keys_text"])


def test_momentum_keys_use_the_momentum_projection() -> None:
    m = make()  # default: momentum
    b = batch()
    img, txt = pooled_keys(m, b)
    out = m.training_step(b)
    torch.testing.assert_close(out["keys_image"], F.normalize(by_hand(m.image_k.proj, img), dim=1))
    torch.testing.assert_close(out["keys_text"], F.normalize(by_hand(m.text_k.proj, txt), dim=1))
    live = F.normalize(by_hand(m.image_q.proj, img), dim=1)
    assert (out["keys_image"] - live).abs().max() > 1e-3  # the two options really differ here


def test_live_keys_leave_the_query_bn_statistics_alone() -> None:
    b = batch()
    stats = []
    for mode in ("momentum", "live"):
        m = make(key_projection=mode)
        m.training_step(b)
        stats.append([t.clone() for t in (*m.image_q.proj[1].buffers(), *m.text_q.proj[1].buffers())])
    for a, c in zip(*stats, strict=True):
        assert torch.equal(a, c)  # only the query pass moved them, in both modes


def test_queue_only_negatives_reach_the_loss() -> None:
    b = batch()
    m = make(negatives="queue_only")
    out = m.training_step(b)
    assert out["i2t"].item() == pytest.approx(0.0, abs=1e-7)  # empty queue: the positive alone
    m.after_optimizer_step(b, out)
    out = m.training_step(b)  # the queue holds only this batch's ids: still nothing to contrast
    assert out["i2t"].item() == pytest.approx(0.0, abs=1e-7)
    other = make()
    assert other.training_step(b)["i2t"].item() > 0.1  # in-batch keys are negatives by default


def test_old_checkpoints_and_configs_load(tmp_path) -> None:
    old = make()
    new = make(negatives="queue_only", key_projection="live")
    assert new.state_dict().keys() == old.state_dict().keys()  # the options add no tensors
    new.load_state_dict(old.state_dict())
    earlier = tmp_path / "config.yaml"  # a run config written before the options existed
    earlier.write_text("method:\n  name: textreid\n  embed_dim: 256\n")
    cfg = load_config(earlier)
    assert (cfg.method.negatives, cfg.method.key_projection) == ("batch_and_queue", "momentum")
    recipe = load_config(CONFIGS / "cuhk_pedes_cuhk01/textreid.yaml")  # the recipes: the reference's
    assert (recipe.method.negatives, recipe.method.key_projection) == ("queue_only", "live")
    assert recipe.method.label_smoothing == 0.1 and recipe.eval.text_rerank == "topk_overlap"
    assert TextReIDConfig().label_smoothing == 0.0
    with pytest.raises(ValueError, match="key_projection 'ema'"):
        make(key_projection="ema")


def test_bad_option_values_fail_when_the_config_is_read() -> None:
    from reidkit.config import ConfigError

    recipe = CONFIGS / "cuhk_pedes_cuhk01/textreid.yaml"
    with pytest.raises(ConfigError, match="method.negatives: 'foo'"):
        load_config(recipe, ["method.negatives=foo"])
    with pytest.raises(ConfigError, match="method.key_projection: 'ema'"):
        load_config(recipe, ["method.key_projection=ema"])
    with pytest.raises(ConfigError, match="method.memory_update: 'cm'"):
        load_config(CONFIGS / "cuhk03_detected/cc_osnet.yaml", ["method.memory_update=cm"])
