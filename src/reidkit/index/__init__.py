"""Gallery indexes: ExactIndex (the oracle), FaissIndex (Flat / IVF / HNSW) and the on-disk GalleryIndex."""

from reidkit.index.exact import ExactIndex
from reidkit.index.faiss_index import FACTORY_FORMS, FaissIndex
from reidkit.index.store import (
    Entry,
    GalleryIndex,
    IndexBuilder,
    IndexIntegrityError,
    ModelMismatchError,
    SearchHit,
    dataset_identity,
    describe_dir,
)

__all__ = [
    "FACTORY_FORMS",
    "Entry",
    "ExactIndex",
    "FaissIndex",
    "GalleryIndex",
    "IndexBuilder",
    "IndexIntegrityError",
    "ModelMismatchError",
    "SearchHit",
    "dataset_identity",
    "describe_dir",
]
