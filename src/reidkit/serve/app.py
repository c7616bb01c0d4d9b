"""FastAPI search service over a GalleryIndex: image and text search, gallery images, health, one web page.

The models are injected as plain callables so the service knows nothing about checkpoints:

- ``embed_image(img: PIL.Image.Image) -> np.ndarray [D]``: an RGB image to one L2-normalised embedding;
- ``embed_text(text: str) -> np.ndarray [D]``: a sentence to one embedding in the same space.

`image_embed_fn` / `text_embed_fn` adapt an `Embedder` (types.py) plus a preprocessing function into them.
Embedding and index search run in a bounded thread pool so concurrent requests never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

from reidkit.index import GalleryIndex, SearchHit
from reidkit.serve.uploads import DEFAULT_MAX_PIXELS, BodyLimit, decode_image, read_upload
from reidkit.types import Batch, Embedder

logger = logging.getLogger(__name__)

ImageFn = Callable[[Image.Image], np.ndarray]
TextFn = Callable[[str], np.ndarray]
STATIC_DIR = Path(__file__).resolve().parent / "static"
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'",
    "Referrer-Policy": "no-referrer",
}


class EmbedderError(RuntimeError):
    """An injected embedder returned something that is not one finite [D] vector (a server-side fault)."""


def image_embed_fn(embedder: Embedder, transform: Callable[[Image.Image], torch.Tensor]) -> ImageFn:
    """Adapt an image `Embedder` and its eval transform (PIL -> [3, H, W]) into `embed_image` for the service.

    The batch is built on the device of the transform's output; move it there in `transform` if needed.
    """

    def embed_image(img: Image.Image) -> np.ndarray:
        x = transform(img).unsqueeze(0)  # [1, 3, H, W]
        zeros = torch.zeros(1, dtype=torch.long, device=x.device)
        batch = Batch(images=x, pids=zeros, camids=zeros, index=zeros)
        with torch.no_grad():
            return embedder.embed(batch)[0].detach().float().cpu().numpy()  # [D]

    return embed_image


def text_embed_fn(embedder: Embedder, to_batch: Callable[[str], Batch]) -> TextFn:
    """Adapt a text `Embedder` and a function that tokenises one sentence into a `Batch` into `embed_text`."""

    def embed_text(text: str) -> np.ndarray:
        with torch.no_grad():
            return embedder.embed(to_batch(text))[0].detach().float().cpu().numpy()  # [D]

    return embed_text


class TextQuery(BaseModel):
    """Body of POST /search/text."""

    text: str = Field(min_length=1, max_length=2000)
    k: int = 10


class _Pool:
    """A lazily started thread pool, shut down with the app (and restartable for a new lifespan)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="reidkit-serve")
            return self._executor

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.get(), fn, *args)


_GALLERY_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}


def _serveable(real: Path, info: os.stat_result, allowed: Path) -> bool:
    """A regular file whose resolved path lies under the allowed gallery root."""
    return stat.S_ISREG(info.st_mode) and real.is_relative_to(allowed)


def _read_no_follow(real: Path) -> bytes:
    """Read a resolved path, refusing a symlink swapped in since it was resolved."""
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _image_kind(data: bytes) -> str | None:
    """The media type of bytes that parse as a gallery image format (headers and structure), else None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = _GALLERY_FORMATS.get(img.format or "")
            img.verify()
        return kind
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _query_vector(vec: Any, dim: int, who: str) -> np.ndarray:
    """Check an embedder's output is one finite [D] vector and return it as float32 [1, D]."""
    arr = np.asarray(vec, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (dim,):
        raise EmbedderError(f"{who} returned shape {arr.shape}; the index expects [{dim}]")
    if not np.isfinite(arr).all() or not np.linalg.norm(arr) > 0:
        raise EmbedderError(f"{who} returned a zero or non-finite vector")
    return arr[None, :]  # [1, D]


def create_app(
    index: GalleryIndex,
    *,
    embed_image: ImageFn | None = None,
    embed_text: TextFn | None = None,
    max_upload_bytes: int = 10 * 2**20,
    workers: int = 2,
    max_k: int = 100,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decode_size: tuple[int, int] | None = None,
    image_root: str | Path | None = None,
    rerank: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the search app over a loaded `index`; relative gallery paths are resolved against `image_root`.

    A search kind whose embedder is None answers 501. `workers` bounds the threads running models and search.
    `max_pixels` bounds what an upload may decode to; `decode_size` (the model's input w, h) lets JPEGs
    decode at a reduced scale. `rerank` (k-reciprocal options): image queries are re-ranked at query time.
    """
    if workers < 1 or max_k < 1 or max_upload_bytes < 1:
        raise ValueError("workers, max_k and max_upload_bytes must be positive")
    pool = _Pool(workers)
    root = Path(image_root) if image_root is not None else None
    image_kinds: dict[str, str] = {}  # ETag -> media type of gallery files that decoded as images
    # gallery files are served only from under these folders, resolved once (an index never saved has no
    # recorded root: the common folder of its paths now)
    abs_root = index.gallery_root or index.resolved_root()
    allowed_abs = Path(abs_root).resolve() if abs_root else None
    allowed_rel = root.resolve() if root is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(title="reidkit search", version="1", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_upload_bytes=max_upload_bytes)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad input back whole (megabytes for an oversized text): say where
        # and what, not the input itself
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300], "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(EmbedderError)
    async def embedder_error(_: Request, exc: EmbedderError) -> JSONResponse:
        logger.error("embedder fault: %s", exc)
        return JSONResponse({"detail": f"server embedder error: {exc}"}, status_code=500)

    def check_k(k: int) -> int:
        if not 1 <= k <= max_k:
            raise HTTPException(422, f"k must be between 1 and {max_k}, got {k}")
        return k

    def results(hits: list[SearchHit], k: int, started: float) -> dict[str, Any]:
        return {
            "k": k,
            "mode": index.mode,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": [
                {
                    "rank": h.rank,
                    "id": h.entry.id,
                    "score": h.score,
                    "pid": h.entry.pid,
                    "camid": h.entry.camid,
                    "name": Path(h.entry.path).name,
                    "captions": list(h.entry.captions),
                    "num_images": len(h.entry.members) if index.mode == "centroid" else 1,
                    "image_url": f"/gallery/{h.entry.id}",
                }
                for h in hits
            ],
        }

    def search_image(data: bytes, k: int) -> list[SearchHit]:
        assert embed_image is not None
        img = decode_image(data, max_pixels, decode_size)
        vec = _query_vector(embed_image(img), index.dim, "embed_image")
        return index.query(vec, k, rerank)[0]

    def search_text(text: str, k: int) -> list[SearchHit]:
        assert embed_text is not None
        return index.query(_query_vector(embed_text(text), index.dim, "embed_text"), k)[0]

    @app.post("/search/image")
    async def post_search_image(request: Request, k: int = Query(10)) -> dict[str, Any]:
        """Rank the gallery against an uploaded photo (multipart field `file`)."""
        started = time.perf_counter()
        check_k(k)
        if embed_image is None:
            raise HTTPException(501, "image search is not available: the server has no image embedder")
        data = await read_upload(request, max_upload_bytes)
        hits = await pool.run(search_image, data, k)
        return results(hits, k, started)

    @app.post("/search/text")
    async def post_search_text(query: TextQuery) -> dict[str, Any]:
        """Rank the gallery against a sentence describing the person."""
        started = time.perf_counter()
        check_k(query.k)
        if embed_text is None:
            raise HTTPException(501, "text search is not available: the server has no text embedder")
        text = query.text.strip()
        if not text:
            raise HTTPException(400, "text is empty")
        hits = await pool.run(search_text, text, query.k)
        return results(hits, query.k, started)

    @app.get("/gallery/{entry_id}")
    def get_gallery(entry_id: int, request: Request) -> Response:
        """The image file of one index entry (centroid mode: the identity's representative image).

        Gallery images are small crops, so the file is read whole in one worker-thread hop (cheaper under
        load than a streamed FileResponse); an ETag lets browsers revalidate with 304.
        """
        try:
            entry = index.entry(entry_id)
        except KeyError as e:
            raise HTTPException(404, f"no gallery entry with id {entry_id}") from e
        path = Path(entry.path)
        allowed = allowed_abs
        if not path.is_absolute():
            if root is None:
                logger.warning("gallery entry %d: relative path %s and no image root", entry_id, path)
                raise HTTPException(404, f"the image file of gallery entry {entry_id} is not served")
            path, allowed = root / path, allowed_rel
        missing = HTTPException(404, f"the image file of gallery entry {entry_id} is missing on the server")
        try:
            real = path.resolve(strict=True)
            info = os.stat(real)
        except OSError as e:
            logger.warning("gallery entry %d: file %s is missing", entry_id, path)
            raise missing from e
        if allowed is None or not _serveable(real, info, allowed):
            logger.warning("gallery entry %d: %s is not a file under %s; refused", entry_id, real, allowed)
            raise HTTPException(404, f"the image file of gallery entry {entry_id} is not served")
        etag = f'"{entry_id}-{info.st_mtime_ns:x}-{info.st_size:x}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600", **_SECURITY_HEADERS}
        if request.headers.get("if-none-match") == etag and etag in image_kinds:
            return Response(status_code=304, headers=headers)
        try:
            data = _read_no_follow(real)
        except OSError as e:
            logger.warning("gallery entry %d: %s could not be read (%s)", entry_id, real, e)
            raise missing from e
        kind = image_kinds.get(etag) or _image_kind(data)
        if kind is None:
            logger.warning("gallery entry %d: %s does not decode as an image; refused", entry_id, real)
            raise HTTPException(404, f"the image file of gallery entry {entry_id} is not served")
        image_kinds[etag] = kind
        return Response(data, media_type=kind, headers=headers)

    @app.get("/health")
    def get_health() -> dict[str, Any]:
        """Index size and kind, and which searches this server can answer."""
        return {
            "status": "ok",
            "count": len(index),
            "mode": index.mode,
            "dim": index.dim,
            "factory": index.factory,
            "model_sha256": index.model_sha256,
            "search": {"image": embed_image is not None, "text": embed_text is not None},
            "max_k": max_k,
            "max_upload_bytes": max_upload_bytes,
        }

    @app.get("/", include_in_schema=False)
    def get_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_SECURITY_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
