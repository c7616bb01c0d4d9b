"""After training: build a gallery index from a checkpoint, search it, serve it, export the embedder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from reidkit.app.build import eval_transform, extract_features, load_method
from reidkit.config import Config, from_dict
from reidkit.engine.checkpoint import load_checkpoint
from reidkit.index import GalleryIndex, IndexBuilder, dataset_identity
from reidkit.methods import Method
from reidkit.models.embedder import ImageEmbedder
from reidkit.types import Features, Record
from reidkit.utils import atomic_write, sha256_file

log = logging.getLogger(__name__)


def load_run(ckpt: str | Path, device: torch.device) -> tuple[Config, Method]:
    """Rebuild the method from the config stored in a checkpoint and load its weights."""
    state = load_checkpoint(ckpt, map_location=device)
    if not state.get("config"):
        raise ValueError(f"{ckpt}: the checkpoint carries no config; was it written by `reidkit train`?")
    cfg = from_dict(state["config"])
    return cfg, load_method(cfg, ckpt, device)


def build_index(
    ckpt: str | Path,
    records: Sequence[Record],
    out: str | Path,
    *,
    centroids: bool = False,
    factory: str = "Flat",
    device: torch.device,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
    source: dict[str, Any] | None = None,
    fresh: bool = False,
) -> GalleryIndex:
    """Embed `records` in resumable batches (shards persisted as they finish) and save the index to `out`.

    `source` (e.g. root, format, reader options) and the records identify the dataset: an unfinished build
    of another one is refused, or discarded when `fresh`."""

    cfg, method = load_run(ckpt, device)
    embedder = method.embedders()["image"]
    builder = IndexBuilder(
        out,
        dim=embedder.dim,
        mode="centroid" if centroids else "instance",
        factory=factory,
        model_sha256=sha256_file(ckpt),
        dataset=dataset_identity(records, **(source or {})),
        fresh=fresh,
    )
    todo = builder.pending(records)
    if progress is not None and len(todo) < len(records):
        progress(len(records) - len(todo))
    for chunk, feats in _embedded_chunks(method, cfg, todo, device, batch_size, progress):
        builder.add(feats, chunk)
    return builder.finish()


def _embedded_chunks(
    method: Method,
    cfg: Config,
    records: Sequence[Record],
    device: torch.device,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> Iterator[tuple[list[Record], Features]]:
    """(records, their image features) per `batch_size` records, reporting progress after each."""
    for start in range(0, len(records), batch_size):
        chunk = list(records[start : start + batch_size])
        yield chunk, extract_features(method, chunk, cfg, device)
        if progress is not None:
            progress(len(chunk))


def embed_folder(
    ckpt: str | Path,
    records: Sequence[Record],
    out: str | Path,
    *,
    device: torch.device,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Embed `records` with a checkpoint's image embedder and write `out` (.npz, atomically): `feats` [N, D]
    float32 L2-normalised, `paths` [N], `model_sha256`: features for your own pipelines."""
    cfg, method = load_run(ckpt, device)
    parts = [f.feats for _, f in _embedded_chunks(method, cfg, records, device, batch_size, progress)]
    out = Path(out)
    with atomic_write(out, "wb") as fh:
        np.savez(
            fh,
            feats=np.concatenate(parts).astype(np.float32),
            paths=np.asarray([r.path for r in records]),
            model_sha256=np.asarray(sha256_file(ckpt)),
        )
    return out


def open_index(
    index_dir: str | Path, ckpt: str | Path, device: torch.device
) -> tuple[GalleryIndex, Config, Method]:
    """Load an index and the model that built it; a different checkpoint is refused."""
    cfg, method = load_run(ckpt, device)
    dim = method.embedders()["image"].dim
    index = GalleryIndex.load(index_dir, expected_model_sha256=sha256_file(ckpt), expected_dim=dim)
    return index, cfg, method


def embed_image_fn(cfg: Config, method: Method, device: torch.device) -> Callable[[Image.Image], np.ndarray]:
    from reidkit.serve.app import image_embed_fn

    tf = eval_transform(cfg)
    return image_embed_fn(method.embedders()["image"], lambda im: tf(im.convert("RGB")).to(device))


def embed_text_fn(method: Method, device: torch.device) -> Callable[[str], np.ndarray] | None:
    """A sentence embedder when the method has a text stream and a vocabulary (TextReID), else None."""
    embedders = method.embedders()
    vocab = method.tokenizer()
    if "text" not in embedders or vocab is None:
        return None
    from reidkit.data.dataset import collate
    from reidkit.serve.app import text_embed_fn

    def to_batch(text: str):
        item = {"pid": -1, "camid": -1, "index": 0, "image_id": -1, "tokens": vocab(text)}
        return collate([item]).to(device)

    return text_embed_fn(embedders["text"], to_batch)


def search(
    index: GalleryIndex,
    cfg: Config,
    method: Method,
    device: torch.device,
    *,
    image: str | Path | None = None,
    text: str | None = None,
    k: int = 10,
    rerank: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Top-k gallery entries for one query image or one sentence; `rerank` (k1, k2, lambda_value) re-ranks
    image queries by k-reciprocal encoding among the top candidates."""
    if (image is None) == (text is None):
        raise ValueError("search needs exactly one of image or text")
    if image is not None:
        from reidkit.data.dataset import load_image

        vec = embed_image_fn(cfg, method, device)(load_image(str(image)))
    else:
        fn = embed_text_fn(method, device)
        if fn is None:
            raise ValueError(
                f"this checkpoint's method ({cfg.method.name}) has no text encoder; search by image"
            )
        vec = fn(text or "")
    hits = index.query(np.asarray(vec, dtype=np.float32)[None, :], k, rerank if image is not None else None)[
        0
    ]
    return [h.as_dict() for h in hits]


class _ExportWrapper(torch.nn.Module):
    """images [N, 3, H, W] -> L2-normalised embeddings [N, D], the retrieval feature of the method."""

    def __init__(self, model: torch.nn.Module, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.model(images)[self.key], dim=1)


def export_onnx(ckpt: str | Path, out: str | Path, *, opset: int = 17) -> Path:
    """Export the image embedder to ONNX with a dynamic batch axis (written atomically)."""
    cfg, method = load_run(ckpt, torch.device("cpu"))
    emb = method.embedders()["image"]
    if not isinstance(emb, ImageEmbedder):
        raise ValueError(f"{ckpt}: the image embedder of {cfg.method.name} cannot be exported")
    wrapper = _ExportWrapper(emb.model, emb.key).eval()
    dummy = torch.randn(2, 3, cfg.data.height, cfg.data.width)
    out = Path(out)
    with atomic_write(out, "wb") as fh:
        torch.onnx.export(
            wrapper,
            (dummy,),
            fh,
            input_names=["images"],
            output_names=["embeddings"],
            dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    log.info("exported %s (input [N, 3, %d, %d])", out, cfg.data.height, cfg.data.width)
    return out
