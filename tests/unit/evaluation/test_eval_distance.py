"""Chunked torch distances against scipy's cdist, and their device/dtype contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from reidkit.evaluation import paired_distance, pairwise_distance
from reidkit.evaluation.distance import distance_blocks

SCIPY_NAME = {"cosine": "cosine", "euclidean": "euclidean", "sqeuclidean": "sqeuclidean"}


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_pairwise_matches_cdist(metric: str, chunk_size: int) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((23, 5)), rng.standard_normal((31, 5))
    got = pairwise_distance(x, y, metric, chunk_size=chunk_size)
    assert got.shape == (23, 31) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), cdist(x, y, SCIPY_NAME[metric]), atol=1e-10)


def test_float32_in_float32_out_and_tensor_inputs() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    got = pairwise_distance(torch.from_numpy(x), torch.from_numpy(x), "euclidean")
    assert got.dtype == torch.float32 and got.device == torch.from_numpy(x).device
    # a tiny negative square from rounding is clamped: self distances are ~0, never NaN
    assert torch.all(torch.diagonal(got) < 1e-2) and not torch.isnan(got).any()


def test_paired_is_the_diagonal() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 4))
    for metric in ("cosine", "euclidean", "sqeuclidean"):
        np.testing.assert_allclose(
            paired_distance(x, y, metric).numpy(), np.diag(cdist(x, y, SCIPY_NAME[metric])), atol=1e-10
        )


def test_blocks_cover_all_rows_once() -> None:
    x = np.arange(10, dtype=np.float64).reshape(5, 2)
    starts = [s for s, b in distance_blocks(x, x, "euclidean", chunk_size=2)]
    assert starts == [0, 2, 4]


def test_bad_inputs_raise() -> None:
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="unknown distance metric"):
        pairwise_distance(x, x, "manhattan")
    with pytest.raises(ValueError, match="dimensions differ"):
        pairwise_distance(x, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        pairwise_distance(np.zeros(3), x)
