"""ExactIndex against a hand-worked example and a naive per-query loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reidkit.index import ExactIndex
from reidkit.index import exact as exact_mod


def naive_search(gallery: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    """Cosine similarity computed one pair at a time in float64, sorted by (-score, position)."""
    out = []
    for q in queries.astype(np.float64):
        sims = []
        for pos, g in enumerate(gallery.astype(np.float64)):
            sims.append((-float(q @ g / (np.linalg.norm(q) * np.linalg.norm(g))), pos))
        out.append([int(ids[pos]) for _, pos in sorted(sims)[:k]])
    return out


def test_hand_worked_example() -> None:
    index = ExactIndex(2)
    # cos to query [1, 0]: 1, 0, 1/sqrt(2), -1 (vectors are normalised by the index: [3, 3] -> [.707, .707])
    index.add(np.array([[2.0, 0.0], [0.0, 5.0], [3.0, 3.0], [-1.0, 0.0]]), np.array([10, 11, 12, 13]))
    scores, ids = index.search(np.array([[4.0, 0.0]]), 3)
    assert ids.tolist() == [[10, 12, 11]]
    np.testing.assert_allclose(scores, [[1.0, np.sqrt(0.5), 0.0]], atol=1e-6)
    scores, ids = index.search(np.array([[0.0, -1.0]]), 4)  # cos: 0, -1, -.707, 0 -> ties by position
    assert ids.tolist() == [[10, 13, 12, 11]]
    np.testing.assert_allclose(scores, [[0.0, 0.0, -np.sqrt(0.5), -1.0]], atol=1e-6)


def test_matches_naive_loop_on_random_data() -> None:
    rng = np.random.default_rng(3)
    gallery = rng.standard_normal((120, 8)).astype(np.float32)
    queries = rng.standard_normal((15, 8)).astype(np.float32)
    ids = rng.permutation(1000)[:120]
    index = ExactIndex(8)
    index.add(gallery, ids)
    _, found = index.search(queries, 7)
    assert found.tolist() == naive_search(gallery, ids, queries, 7)


def test_query_chunking_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    index = ExactIndex(16)
    index.add(rng.standard_normal((300, 16)), np.arange(300))
    queries = rng.standard_normal((50, 16))
    whole = index.search(queries, 9)
    monkeypatch.setattr(exact_mod, "_BLOCK_CELLS", 300 * 4)  # 4 queries per chunk, with a ragged last chunk
    chunked = index.search(queries, 9)
    np.testing.assert_array_equal(whole[1], chunked[1])
    # Scores may differ in the last bits: BLAS blocks a [4, D] x [D, N] product differently from [50, D].
    np.testing.assert_allclose(whole[0], chunked[0], rtol=1e-6, atol=1e-6)


def test_k_larger_than_index_pads() -> None:
    index = ExactIndex(3)
    index.add(np.eye(3), np.array([5, 6, 7]))
    scores, ids = index.search(np.array([[0.0, 1.0, 0.0]]), 5)
    assert ids.tolist() == [[6, 5, 7, -1, -1]]
    assert np.isneginf(scores[0, 3:]).all() and scores[0, 0] == pytest.approx(1.0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = ExactIndex(4)
    index.add(rng.standard_normal((20, 4)), np.arange(100, 120))
    index.save(tmp_path / "exact.npz")
    loaded = ExactIndex.load(tmp_path / "exact.npz")
    q = rng.standard_normal((3, 4))
    for a, b in zip(index.search(q, 5), loaded.search(q, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["exact.npz"]  # no temp file left behind


def test_load_rejects_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="bad.npz"):
        ExactIndex.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    ("vecs", "ids", "message"),
    [
        (np.ones((2, 3)), np.arange(2), "expected dimension 4"),
        (np.ones(4), np.arange(1), "2-D"),
        (np.array([[1.0, np.nan, 0, 0]]), np.arange(1), "NaN"),
        (np.zeros((1, 4)), np.arange(1), "zero norm"),
        (np.ones((2, 4)), np.array([0, -1]), ">= 0"),
        (np.ones((2, 4)), np.arange(3), "ids"),
        (np.ones((2, 4), dtype=np.int64), np.arange(2), "float"),
    ],
)
def test_bad_input_raises(vecs: np.ndarray, ids: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExactIndex(4).add(vecs, ids)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_raises(k: object) -> None:
    index = ExactIndex(2)
    index.add(np.eye(2), np.arange(2))
    with pytest.raises(ValueError, match="k"):
        index.search(np.eye(2), k)  # type: ignore[arg-type]
