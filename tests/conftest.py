"""Fixtures shared by every test package: one-thread settings for torch and faiss (opt in per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test: many tiny ops on a shared 2-core machine spend more on thread
    synchronisation than they gain (OSNet forward ~0.1 s on 1 thread vs ~1-2 s on 2 with busy cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_faiss_thread() -> Iterator[None]:
    """faiss (OpenMP) on one thread for the whole module, module-scoped fixtures included: OpenMP
    spin-waiting on a shared 2-core machine makes faiss training ~30x slower; one thread is fast."""
    import faiss  # only the modules that use faiss need it installed

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
