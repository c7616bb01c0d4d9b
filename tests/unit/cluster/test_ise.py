"""ISE support samples against hand-worked 2-D examples (direction and degree) and the lambda_t schedule."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.cluster.ise import lambda_schedule, support_samples

# three unit centroids in the plane: c0 = +x, c1 = +y, c2 = -x
CENTS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def _unit(x: float, y: float) -> list[float]:
    n = math.hypot(x, y)
    return [x / n, y / n]


def test_support_moves_towards_the_nearest_other_centroid_by_half_the_gap_times_lambda():
    f = torch.tensor([[0.8, 0.6]])  # label 0; cos to c1 = 0.6, to c2 = -0.8 -> nearest other is c1
    for lam, expected in [
        (1.0, _unit(0.8 - 0.5, 0.6 + 0.5)),  # f + 1.0 * (c1 - c0) / 2
        (0.5, _unit(0.8 - 0.25, 0.6 + 0.25)),  # f + 0.5 * (c1 - c0) / 2
        (0.0, _unit(0.8, 0.6)),  # degree 0: the feature itself
    ]:
        s, y = support_samples(f, torch.tensor([0]), CENTS, lam, k=1)
        assert s.shape == (1, 2) and y.tolist() == [0]
        assert s[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_own_cluster_is_never_the_neighbour_and_k_supports_are_sample_major():
    f = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    labels = torch.tensor([1, 0])  # sample 0 sits on c0 but is labelled 1: its nearest *other* is c0
    s, y = support_samples(f, labels, CENTS, 1.0, k=2)
    assert s.shape == (4, 2) and y.tolist() == [1, 1, 0, 0]
    # sample 0 (own c1): others by similarity c0 (1), c2 (-1)
    assert s[0].tolist() == pytest.approx(_unit(1.0 + 0.5, -0.5), abs=1e-6)  # + (c0 - c1) / 2
    assert s[1].tolist() == pytest.approx(_unit(1.0 - 0.5, -0.5), abs=1e-6)  # + (c2 - c1) / 2
    # sample 1 (own c0): c1 (0.6) then c2 (-0.8)
    assert s[2].tolist() == pytest.approx(_unit(0.3, 1.1), abs=1e-6)
    assert s[3].tolist() == pytest.approx(_unit(0.8 - 1.0, 0.6), abs=1e-6)  # + (c2 - c0) / 2


def test_k_is_capped_by_the_number_of_other_clusters_and_one_cluster_gives_none():
    f = torch.tensor([[0.8, 0.6]])
    s, y = support_samples(f, torch.tensor([0]), CENTS, 0.3, k=5)
    assert s.shape == (2, 2) and y.tolist() == [0, 0]
    s, y = support_samples(f, torch.tensor([0]), CENTS[:1], 0.3, k=1)
    assert s.shape == (0, 2) and y.shape == (0,)


def test_gradient_reaches_features_not_centroids():
    f = torch.tensor([[0.8, 0.6], [0.0, 1.0]], requires_grad=True)
    c = CENTS.clone().requires_grad_(True)
    s, _ = support_samples(f, torch.tensor([0, 1]), c, 0.7)
    s.sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    assert c.grad is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels must lie"):
        support_samples(torch.ones(1, 2), torch.tensor([3]), CENTS, 0.5)
    with pytest.raises(ValueError, match="centroids"):
        support_samples(torch.ones(1, 3), torch.tensor([0]), CENTS, 0.5)
    with pytest.raises(ValueError, match="k must be"):
        support_samples(torch.ones(1, 2), torch.tensor([0]), CENTS, 0.5, k=0)


@pytest.mark.parametrize("kind", ["log", "linear"])
def test_lambda_schedule_end_points(kind):
    assert lambda_schedule(0.0, 1.0, kind) == pytest.approx(0.0)
    assert lambda_schedule(1.0, 1.0, kind) == pytest.approx(0.5)
    assert lambda_schedule(1.0, 0.6, kind) == pytest.approx(0.3)
    values = [lambda_schedule(p / 10, 1.0, kind) for p in range(11)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))  # grows monotonically


def test_lambda_schedule_shapes():
    # the log schedule is concave: above the linear one inside (0, 1); at t/T = 1/2 it is 0.5 log((e + 1) / 2)
    assert lambda_schedule(0.5, 1.0, "log") == pytest.approx(0.5 * math.log((math.e + 1) / 2))
    assert lambda_schedule(0.5, 1.0, "linear") == pytest.approx(0.25)
    assert lambda_schedule(0.3, 1.0, "log") > lambda_schedule(0.3, 1.0, "linear")
    with pytest.raises(ValueError, match="valid"):
        lambda_schedule(0.5, 1.0, "cosine")
    with pytest.raises(ValueError, match="progress"):
        lambda_schedule(1.5, 1.0, "log")
