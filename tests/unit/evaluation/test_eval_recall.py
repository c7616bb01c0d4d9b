"""Recall@K (fine-grained retrieval, query excluded by index) against a hand-worked line and a naive loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation import recall_at_k


def test_hand_worked_points_on_a_line() -> None:
    """x = 0, 1, 3, 7, 8 with labels a b a b b (euclidean):
    0 -> 1(b) 3(a): hit at 2.   1 -> 0(a) 3(a) 7(b): hit at 3.   3 -> 1(b) 0(a): hit at 2.
    7 -> 8(b): hit at 1.        8 -> 7(b): hit at 1.
    R@1 = 2/5, R@2 = 4/5, R@4 = 5/5."""
    x = np.array([[0.0], [1.0], [3.0], [7.0], [8.0]])
    labels = np.array([0, 1, 0, 1, 1])
    got = recall_at_k(x, labels, ks=(1, 2, 4), metric="euclidean")
    assert got == {1: pytest.approx(0.4), 2: pytest.approx(0.8), 4: pytest.approx(1.0)}


def test_duplicate_of_another_class_is_not_skipped() -> None:
    """Sample 1 duplicates sample 0 with another label: excluding the query by index keeps the duplicate
    as sample 0's nearest neighbour (a miss); dropping 'the first hit' instead would have hidden it."""
    x = np.array([[0.0], [0.0], [0.1], [5.0]])
    labels = np.array([0, 1, 0, 1])
    got = recall_at_k(x, labels, ks=(1,), metric="euclidean")
    # 0 -> 1 (miss); 1 -> 0 (miss); 2 -> 0 or 1 at 0.1 (tie, one of each label); 3 -> 2 (miss)
    assert got[1] <= 0.25


def test_against_naive_loop() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((97, 8))
    labels = rng.integers(0, 12, 97)
    d = 1 - (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (x / np.linalg.norm(x, axis=1, keepdims=True)).T
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)
    want = {
        k: float(np.mean([(labels[order[i, :k]] == labels[i]).any() for i in range(97)]))
        for k in (1, 2, 4, 8)
    }
    got = recall_at_k(torch.from_numpy(x).float(), labels, chunk_size=10)
    assert got == pytest.approx(want)


def test_bad_k() -> None:
    with pytest.raises(ValueError, match="needs more than 8 samples"):
        recall_at_k(np.zeros((5, 2)), np.zeros(5), ks=(8,))
    with pytest.raises(ValueError, match="labels"):
        recall_at_k(np.zeros((5, 2)), np.zeros(4), ks=(1,))
