"""Query-image uploads: the request body limit, reading the multipart file and bounded image decoding, kept
apart from the routes so that every size rule an upload meets lives in one place."""

from __future__ import annotations

import io

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reidkit.data.dataset import upright

# Multipart framing (boundaries, part headers) on top of the file bytes that a request may carry.
_MULTIPART_SLACK = 64 * 1024

# What a query image may decode to: 16x the area of a 256 x 128 model input (the service passes 16x its
# model's input). The size is read from the header, so a small file that would decode to a huge image is
# refused before any pixel is decoded: one request's decode cost stays bounded.
DEFAULT_MAX_PIXELS = 16 * 256 * 128


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: answer 413 to POST bodies larger than an upload of `max_upload_bytes` plus its
    multipart framing, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app, self.limit = app, max_upload_bytes + _MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen, started = 0, False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body too large: the limit is {self.limit - _MULTIPART_SLACK} bytes"},
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - JSONResponse never reads the request
    return {"type": "http.disconnect"}


async def read_upload(request: Request, max_upload_bytes: int) -> bytes:
    """The bytes of the multipart field `file` of `request`; 4xx for another content type, a missing or
    empty file, or one over `max_upload_bytes`."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise HTTPException(415, f"expected a multipart/form-data upload (field 'file'), got {ctype!r}")
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart field 'file' with the image is required")
        data = await upload.read(max_upload_bytes + 1)
    if len(data) > max_upload_bytes:
        raise HTTPException(413, f"file too large: the limit is {max_upload_bytes} bytes")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    return data


def decode_image(data: bytes, max_pixels: int, size: tuple[int, int] | None = None) -> Image.Image:
    """Decode uploaded bytes into an RGB image, judging by content (not name); 4xx for anything else.
    `size` (w, h): JPEGs are decoded at a reduced scale no smaller than it (draft mode), which is cheaper."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise HTTPException(
                    413, f"image is {img.width}x{img.height} pixels; the limit is {max_pixels} pixels"
                )
            if size is not None and img.format == "JPEG":
                img.draft("RGB", size)
            img.load()
            return upright(img).convert("RGB")  # a sideways phone photo, as the browser shows it
    except UnidentifiedImageError as e:  # its message holds a Python object's repr: say it in words
        raise HTTPException(
            400, "uploaded file is not a decodable image: not a format reidkit reads (JPEG, PNG, WebP, ...)"
        ) from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise HTTPException(400, f"uploaded file is not a decodable image ({type(e).__name__}: {e})") from e
