"""cross_modal_info_nce(negatives="queue_only"), TextReID's reference negatives, against a naive loop that
builds each row's logit list and mask by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reidkit.losses.crossmodal import cross_modal_info_nce


def naive_queue_only(q, k, ids, queue, queue_ids, t):
    """Row i: logits [q_i·k_i, q_i·queue_n for every n whose id is not any id of the batch] / t; CE at 0."""
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    batch_ids = {int(x) for x in ids}
    keep = [n for n in range(queue.shape[0]) if int(queue_ids[n]) not in batch_ids]
    total = 0.0
    for i in range(q.shape[0]):
        logits = [float(q[i] @ k[i]) / t] + [float(q[i] @ queue[n]) / t for n in keep]
        top = max(logits)
        lse = top + math.log(sum(math.exp(x - top) for x in logits))
        total += lse - logits[0]
    return total / q.shape[0]


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_matches_naive_loop(t: float) -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    ids = torch.tensor([0, 0, 1, 1, 2, 3])
    queue = torch.randn(12, 5, generator=g)
    # ids 0..3 are in the batch (dropped for every row, not only for the row of that id); -1, 4..6 are not
    queue_ids = torch.tensor([0, 4, 1, 5, 5, 3, -1, 6, 2, 4, 0, 7])
    got = cross_modal_info_nce(q, k, ids, queue, queue_ids, t, negatives="queue_only")
    assert got.item() == pytest.approx(naive_queue_only(q, k, ids, queue, queue_ids, t), rel=1e-5)
    # differs from today's batch-and-queue negatives (other batch keys + per-row mask)
    other = cross_modal_info_nce(q, k, ids, queue, queue_ids, t)
    assert abs(other.item() - got.item()) > 1e-3


def test_batch_wide_mask_and_empty_queue() -> None:
    q, k = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([3, 4])
    queue = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # entry 0 has id 4 (row 1's id) and entry 1 id 3: with the batch-wide mask both rows lose both entries
    both_in_batch = cross_modal_info_nce(q, k, ids, queue, torch.tensor([4, 3]), 1.0, negatives="queue_only")
    assert both_in_batch.item() == pytest.approx(0.0, abs=1e-7)
    # in-batch keys are no negatives: without a queue only the positive remains
    no_ids = torch.zeros(0, dtype=torch.long)
    empty = cross_modal_info_nce(q, k, ids, torch.zeros(0, 2), no_ids, 1.0, negatives="queue_only")
    assert empty.item() == pytest.approx(0.0, abs=1e-7)
    # one foreign entry: row 0 sees cos 0 (entry [0, 1]), row 1 sees cos 1
    one = cross_modal_info_nce(q, k, ids, queue, torch.tensor([9, 3]), 1.0, negatives="queue_only")
    expected = (math.log(1 + math.exp(-1.0)) + math.log(2.0)) / 2
    assert one.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_reaches_query_only() -> None:
    g = torch.Generator().manual_seed(2)
    q = torch.randn(4, 3, generator=g, requires_grad=True)
    k, queue = torch.randn(4, 3, generator=g), torch.randn(5, 3, generator=g)
    ids, queue_ids = torch.tensor([0, 1, 1, 2]), torch.tensor([5, 6, 0, 7, 8])
    loss = cross_modal_info_nce(q, k, ids, queue, queue_ids, 0.1, negatives="queue_only")
    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_unknown_mode() -> None:
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="negatives 'queue'"):
        cross_modal_info_nce(x, x, torch.tensor([0, 1]), negatives="queue")
