"""CTL contract: one step on a synthetic batch, parameters move, save -> load gives identical embeddings."""

import dataclasses

import pytest
import torch

from reidkit.app.build import build_method
from reidkit.config import from_dict
from reidkit.data.subsets import carve_validation, relabel
from reidkit.methods.ctl import CTL
from reidkit.types import Batch, Record


def _cfg(**method):
    return from_dict(
        {"model": {"backbone": "resnet18", "weights": None}, "method": {"name": "ctl", **method}}
    )


def _batch(p=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(p).repeat_interleave(k)
    return Batch(
        images=torch.randn(p * k, 3, 32, 16, generator=g),
        pids=pids,
        camids=pids % 2,
        index=torch.arange(p * k),
    )


@pytest.mark.parametrize("centroid_triplet", [True, False])
def test_one_step_finite_and_moves_parameters(centroid_triplet):
    torch.manual_seed(0)
    method = build_method(_cfg(centroid_triplet=centroid_triplet), num_classes=4)
    assert isinstance(method, CTL)
    opt = torch.optim.Adam(method.param_groups(1e-3, 5e-4))
    (center_opt,) = method.extra_optimizers()
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    out = method.training_step(_batch())
    assert torch.isfinite(out["loss"])
    assert ("centroid_triplet" in out) == centroid_triplet
    out["loss"].backward()
    method.before_optimizer_step()
    opt.step()
    center_opt.step()
    moved = [n for n, p in method.named_parameters() if not torch.equal(before[n], p)]
    assert any(n.startswith("model.backbone") for n in moved)
    assert "center.centers" in moved
    assert "model.head.neck.bias" not in moved and not method.model.head.neck.bias.requires_grad


def test_center_params_are_only_in_their_own_optimizer():
    method = build_method(_cfg(), num_classes=4)
    main = {id(p) for g in method.param_groups(1e-3, 5e-4) for p in g["params"]}
    centers = {id(p) for p in method.center.parameters()}
    assert main.isdisjoint(centers)
    (center_opt,) = method.extra_optimizers()
    assert {id(p) for g in center_opt.param_groups for p in g["params"]} == centers


def test_save_load_identical_embeddings(tmp_path):
    torch.manual_seed(0)
    method = build_method(_cfg(), num_classes=4)
    method.training_step(_batch())  # BN running statistics move
    torch.save(method.state_dict(), tmp_path / "m.pt")
    fresh = build_method(_cfg(), num_classes=4)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    b = _batch(seed=1)
    a = method.embedders()["image"].embed(b)
    c = fresh.embedders()["image"].embed(b)
    assert torch.equal(a, c)
    assert torch.allclose(a.norm(dim=1), torch.ones(len(b)), atol=1e-5)


def test_carve_validation_holds_out_whole_training_identities():
    recs = [Record(f"{p}_{i}.jpg", p, camid=i % 2) for p in range(10) for i in range(4)]
    recs += [Record("single_cam.jpg", 99, camid=0)]  # one camera only: never a validation identity
    train, q, g = carve_validation(recs, 3, seed=0)
    held = {r.pid for r in q}
    assert len(held) == 3 and 99 not in held
    assert {r.pid for r in g} == held and held.isdisjoint({r.pid for r in train})
    assert len(train) + len(q) + len(g) == len(recs)
    for pid in held:  # one query per camera, every query has a cross-camera match
        cams = [r.camid for r in q if r.pid == pid]
        assert sorted(cams) == [0, 1]
    with pytest.raises(ValueError, match="only 10 training identities can be validated"):
        carve_validation(recs, 11, seed=0)


def test_relabel_is_dense_and_order_preserving():
    recs = [Record("a", 17), Record("b", 3), Record("c", 17), Record("d", 250)]
    out, mapping = relabel(recs)
    assert [r.pid for r in out] == [1, 0, 1, 2] and mapping == {3: 0, 17: 1, 250: 2}
    assert [r.path for r in out] == [r.path for r in recs]
    assert out[0] == dataclasses.replace(recs[0], pid=1)
