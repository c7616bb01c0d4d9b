"""Gallery indexes: ExactIndex (the oracle), FaissIndex (Flat / IVF / HNSW) and the on-disk GalleryIndex."""

from reidkit.index.builder import IndexBuilder, dataset_identity
from reidkit.index.exact import ExactIndex
from reidkit.index.faiss_index import FACTORY_FORMS, FaissIndex
from reidkit.index.folder import IndexIntegrityError, ModelMismatchError, describe_dir
from reidkit.index.gallery import GalleryIndex, SearchHit
from reidkit.index.metadata import Entry

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
