"""Cross-modal InfoNCE (same-identity exclusion) and the alignment loss against naive loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reidkit.losses.crossmodal import alignment_loss, cross_modal_info_nce


def naive_info_nce(q, k, ids, queue, queue_ids, t):
    """Per query: positive = its own key; negatives = other batch keys and queue entries of other ids."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    queue = F.normalize(queue, dim=1) if queue is not None else None
    total = 0.0
    for i in range(q.shape[0]):
        pos = math.exp(float(q[i] @ k[i]) / t)
        denom = pos
        for j in range(k.shape[0]):
            if j != i and ids[j] != ids[i]:
                denom += math.exp(float(q[i] @ k[j]) / t)
        if queue is not None:
            for n in range(queue.shape[0]):
                if queue_ids[n] != ids[i]:
                    denom += math.exp(float(q[i] @ queue[n]) / t)
        total += -math.log(pos / denom)
    return total / q.shape[0]


def test_hand_worked_example() -> None:
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])  # cosine 1
    queue = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])  # cosines 0 and -1
    ids = torch.tensor([7])
    loss = cross_modal_info_nce(q, k, ids, queue, torch.tensor([1, 2]), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1) + math.exp(-2)), rel=1e-6)
    # the queue entries of identity 7 are excluded: only the positive remains
    same = cross_modal_info_nce(q, k, ids, queue, torch.tensor([7, 7]), temperature=1.0)
    assert same.item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("t", [0.07, 0.5])
@pytest.mark.parametrize("with_queue", [True, False])
def test_matches_naive_loop(t: float, with_queue: bool) -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    queue = torch.randn(11, 5, generator=g) if with_queue else None
    queue_ids = torch.tensor([0, 1, 5, 5, 2, -1, 3, 3, 4, 0, 6]) if with_queue else None
    got = cross_modal_info_nce(q, k, ids, queue, queue_ids, t)
    assert got.item() == pytest.approx(naive_info_nce(q, k, ids, queue, queue_ids, t), rel=1e-5)


def test_gradient_flows_to_query_only_and_matches_autograd_of_naive_formula() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4, 3, generator=g, requires_grad=True)
    k = torch.randn(4, 3, generator=g)
    ids = torch.tensor([0, 1, 1, 2])
    queue, queue_ids = torch.randn(5, 3, generator=g), torch.tensor([0, 1, 2, 3, 4])
    cross_modal_info_nce(q, k, ids, queue, queue_ids, 0.2).backward()
    # reference gradient: the same loss written with an explicit log-sum-exp per row
    q2 = q.detach().clone().requires_grad_()
    qn, kn, un = F.normalize(q2, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    rows = []
    for i in range(4):
        cand = [kn[i]] + [kn[j] for j in range(4) if ids[j] != ids[i]]
        cand += [un[n] for n in range(5) if queue_ids[n] != ids[i]]
        s = torch.stack([qn[i] @ c for c in cand]) / 0.2
        rows.append(torch.logsumexp(s, 0) - s[0])
    torch.stack(rows).mean().backward()
    torch.testing.assert_close(q.grad, q2.grad, atol=1e-6, rtol=1e-5)


def test_info_nce_bad_inputs() -> None:
    x, ids = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="temperature"):
        cross_modal_info_nce(x, x, ids, temperature=0.0)
    with pytest.raises(ValueError, match="queue_ids"):
        cross_modal_info_nce(x, x, ids, torch.randn(2, 4), None)
    with pytest.raises(ValueError, match="ids of keys"):
        cross_modal_info_nce(x, x[:2], ids)


def naive_alignment(img, txt, ids, a, b, sp, sn):
    img, txt = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    total = 0.0
    for i in range(img.shape[0]):
        for j in range(txt.shape[0]):
            s = float(img[i] @ txt[j])
            if ids[i] == ids[j]:
                total += math.log(1 + math.exp(-sp * (s - a)))
            else:
                total += math.log(1 + math.exp(sn * (s - b)))
    return total * 2 / img.shape[0]


def test_alignment_hand_worked_and_naive() -> None:
    # one pair at cosine exactly alpha: log(1 + e^0) = log 2, times 2 / B = 2
    img, txt = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]])
    assert alignment_loss(img, txt, torch.tensor([3])).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    g = torch.Generator().manual_seed(2)
    img, txt = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    ids = torch.tensor([0, 0, 1, 2, 2, 2])
    got = alignment_loss(img, txt, ids, alpha=0.5, beta=0.3, scale_pos=5.0, scale_neg=20.0)
    assert got.item() == pytest.approx(naive_alignment(img, txt, ids, 0.5, 0.3, 5.0, 20.0), rel=1e-5)


def test_alignment_is_stable_for_large_scales() -> None:
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = alignment_loss(img, img.detach(), torch.tensor([0, 1]), scale_pos=1e4, scale_neg=1e4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(img.grad).all()
