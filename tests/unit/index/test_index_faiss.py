"""FaissIndex: factory parsing, parameters, training rules and persistence, each against an oracle."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from reidkit.index import ExactIndex, FaissIndex
from reidkit.index.faiss_index import default_nprobe, parse_factory

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def gaussian(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize(
    ("factory", "parts"),
    [
        ("Flat", {}),
        ("IVF64,Flat", {"nlist": 64}),
        ("IVF8,PQ4", {"nlist": 8, "m": 4, "nbits": 8}),
        ("IVF8, PQ4x6", {"nlist": 8, "m": 4, "nbits": 6}),
        ("HNSW32", {"M": 32}),
    ],
)
def test_parse_factory(factory: str, parts: dict[str, int]) -> None:
    assert parse_factory(factory, 16) == parts


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("LSH", "valid forms"),
        ("IVF,Flat", "valid forms"),
        ("PQ8", "valid forms"),
        ("IVF8,PQ5", "must divide"),
        ("IVF0,Flat", ">= 1"),
        ("HNSW1", "M >= 2"),
        ("IVF8,PQ4x20", "nbits"),
    ],
)
def test_bad_factory_raises_with_valid_forms(factory: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaissIndex(16, factory)


def test_canonical_factory_names() -> None:
    assert FaissIndex(16, "IVF4,PQ4x8").factory == "IVF4,PQ4"
    assert FaissIndex(16, "IVF4,PQ4x6").factory == "IVF4,PQ4x6"
    assert FaissIndex(16, "HNSW12").factory == "HNSW12"


def test_ivf_with_every_list_probed_is_exact() -> None:
    # Visiting all inverted lists turns IVF-Flat into an exhaustive search: identical to the oracle.
    gallery, queries = gaussian(600, 16, 0), gaussian(20, 16, 1)
    ivf = FaissIndex(16, "IVF10,Flat", nprobe=10)
    ivf.add(gallery, np.arange(600))
    exact = ExactIndex(16)
    exact.add(gallery, np.arange(600))
    got, want = ivf.search(queries, 10), exact.search(queries, 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)


def test_nprobe_controls_how_many_lists_are_scanned() -> None:
    gallery = gaussian(600, 16, 0)
    ivf = FaissIndex(16, "IVF10,Flat", nprobe=1)
    ivf.add(gallery, np.arange(600))
    # With one list probed, a search for every vector returns only the members of the query's list.
    _, one = ivf.search(gallery[:5], 600)
    ivf.nprobe = 10
    _, all_lists = ivf.search(gallery[:5], 600)
    assert ((one >= 0).sum(axis=1) < 600).all()
    assert ((all_lists >= 0).sum(axis=1) == 600).all()


def test_default_parameters() -> None:
    assert default_nprobe(32) == 8 and default_nprobe(4096) == 256 and default_nprobe(4) == 4
    assert FaissIndex(8, "IVF32,Flat").nprobe == 8
    assert FaissIndex(8, "HNSW8").ef_search == 64
    assert FaissIndex(8, "Flat").nprobe is None and FaissIndex(8, "Flat").ef_search is None


def test_hnsw_returns_k_results_even_when_k_exceeds_ef_search() -> None:
    gallery = gaussian(500, 8, 2)
    hnsw = FaissIndex(8, "HNSW8", ef_search=16)
    hnsw.add(gallery, np.arange(500))
    _, ids = hnsw.search(gallery[:3], 200)
    assert ((ids >= 0).sum(axis=1) == 200).all()
    assert hnsw.ef_search == 16  # the per-query raise does not change the stored setting


def test_parameters_survive_save_and_load(tmp_path: Path) -> None:
    ivf = FaissIndex(16, "IVF4,PQ4x4", nprobe=3)
    ivf.add(gaussian(300, 16, 0), np.arange(300))
    ivf.save(tmp_path / "ivf.faiss")
    loaded = FaissIndex.load(tmp_path / "ivf.faiss")
    assert (loaded.factory, loaded.nprobe, loaded.dim, len(loaded)) == ("IVF4,PQ4x4", 3, 16, 300)
    hnsw = FaissIndex(16, "HNSW6", ef_search=40)
    hnsw.save(tmp_path / "hnsw.faiss")
    assert FaissIndex.load(tmp_path / "hnsw.faiss").ef_search == 40
    # The file is a plain faiss index, readable without reidkit.
    assert faiss.read_index(str(tmp_path / "ivf.faiss")).ntotal == 300


def test_parameters_of_the_wrong_kind_raise() -> None:
    with pytest.raises(ValueError, match="IVF indexes only"):
        FaissIndex(8, "Flat", nprobe=2)
    with pytest.raises(ValueError, match="1..4"):
        FaissIndex(8, "IVF4,Flat", nprobe=5)
    with pytest.raises(ValueError, match="HNSW indexes only"):
        FaissIndex(8, "Flat").ef_search = 10


def test_training_needs_enough_vectors() -> None:
    ivf = FaissIndex(8, "IVF50,Flat")
    with pytest.raises(ValueError, match="at least 50 vectors"):
        ivf.add(gaussian(20, 8, 0), np.arange(20))
    pq = FaissIndex(8, "IVF2,PQ2")
    with pytest.raises(ValueError, match="at least 256 vectors"):
        pq.train(gaussian(100, 8, 0))
    assert not pq.is_trained and pq.min_train_size == 256


def test_explicit_training_then_small_batches() -> None:
    ivf = FaissIndex(8, "IVF4,Flat", nprobe=4)
    gallery = gaussian(200, 8, 1)
    ivf.train(gallery)
    for start in range(0, 200, 3):  # batches far smaller than nlist work once trained
        ivf.add(gallery[start : start + 3], np.arange(start, min(start + 3, 200)))
    assert len(ivf) == 200
    assert (ivf.search(gallery[:10], 1)[1][:, 0] == np.arange(10)).all()


def test_load_rejects_garbage_and_foreign_indexes(tmp_path: Path) -> None:
    (tmp_path / "junk.faiss").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="junk.faiss"):
        FaissIndex.load(tmp_path / "junk.faiss")
    faiss.write_index(faiss.IndexFlatL2(4), str(tmp_path / "plain.faiss"))
    with pytest.raises(ValueError, match="IndexIDMap2"):
        FaissIndex.load(tmp_path / "plain.faiss")
    l2 = faiss.IndexIDMap2(faiss.IndexFlatL2(4))
    faiss.write_index(l2, str(tmp_path / "l2.faiss"))
    with pytest.raises(ValueError, match="inner-product"):
        FaissIndex.load(tmp_path / "l2.faiss")
