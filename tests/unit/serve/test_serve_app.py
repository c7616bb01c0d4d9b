"""The search service through FastAPI's TestClient: every endpoint and every bad input."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi import HTTPException
from fastapi.testclient import TestClient
from PIL import Image

from reidkit.index import GalleryIndex
from reidkit.serve.app import create_app, image_embed_fn, text_embed_fn
from reidkit.serve.uploads import DEFAULT_MAX_PIXELS, decode_image
from reidkit.types import Batch, Features, Record

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 40),
    "black": (20, 20, 20),
    "white": (240, 240, 240),
}
NAMES = list(COLOURS)
N_IDS, PER_ID, DIM = 6, 3, 16
PROJECTION = np.random.default_rng(1234).standard_normal((4 * 8 * 3, DIM))  # fixed random projection


def person(pid: int, seed: int) -> Image.Image:
    """A 64x128 'pedestrian': upper-body colour NAMES[pid], lower-body colour NAMES[pid+1], pixel noise."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((128, 64, 3), dtype=np.float64)
    arr[:64] = COLOURS[NAMES[pid % 6]]
    arr[64:] = COLOURS[NAMES[(pid + 1) % 6]]
    arr += rng.normal(0, 12, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def embed_image(img: Image.Image) -> np.ndarray:
    """Fake image embedder: 4x8 RGB thumbnail, centred, through a fixed random projection, L2-normalised."""
    x = np.asarray(img.convert("RGB").resize((4, 8)), dtype=np.float64).ravel() / 255.0  # [96]
    v = (x - 0.5) @ PROJECTION  # [D]
    return (v / np.linalg.norm(v)).astype(np.float32)


def embed_text(text: str) -> np.ndarray:
    """Fake text embedder: 'red ... blue' means a red top and blue trousers, embedded like a photo."""
    words = [w for w in text.lower().replace(",", " ").split() if w in COLOURS]
    if len(words) < 2:
        words = (words + ["white", "white"])[:2]
    arr = np.zeros((128, 64, 3), dtype=np.uint8)
    arr[:64], arr[64:] = COLOURS[words[0]], COLOURS[words[1]]
    return embed_image(Image.fromarray(arr))


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def build_index(root: Path, mode: str = "instance", relative: bool = False) -> GalleryIndex:
    records, feats = [], []
    for pid in range(N_IDS):
        for j in range(PER_ID):
            img = person(pid, seed=100 * pid + j)
            path = root / f"{pid:04d}_c{j}_{j:02d}.png"
            img.save(path)
            records.append(Record(path.name if relative else str(path), pid=pid, camid=j))
            feats.append(embed_image(img))
    n = len(records)
    features = Features(
        np.stack(feats),
        np.array([r.pid for r in records]),
        np.array([r.camid for r in records]),
        np.arange(n),
    )
    return GalleryIndex.build(features, records, mode=mode, factory="Flat", model_sha256="ab" * 32)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gallery")


@pytest.fixture(scope="module")
def index(gallery_dir: Path) -> GalleryIndex:
    return build_index(gallery_dir)


@pytest.fixture(scope="module")
def client(index: GalleryIndex) -> TestClient:
    app = create_app(index, embed_image=embed_image, embed_text=embed_text, max_upload_bytes=200_000)
    with TestClient(app) as c:
        yield c


def upload(client: TestClient, data: bytes, k: int | str = 5, name: str = "q.png", ctype: str = "image/png"):
    return client.post(f"/search/image?k={k}", files={"file": (name, data, ctype)})


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["count"] == N_IDS * PER_ID and body["mode"] == "instance" and body["dim"] == DIM
    assert body["search"] == {"image": True, "text": True}
    assert body["factory"] == "Flat" and body["model_sha256"] == "ab" * 32


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="drop"' in page.text and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize("pid", range(N_IDS))
def test_image_search_ranks_the_same_identity_first(client: TestClient, pid: int) -> None:
    response = upload(client, png_bytes(person(pid, seed=999)), k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert [r["pid"] for r in results[:PER_ID]] == [pid] * PER_ID
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    first = results[0]
    assert set(first) >= {"id", "score", "pid", "camid", "name", "image_url", "captions"}
    assert first["image_url"] == f"/gallery/{first['id']}"


def test_image_search_scores_equal_direct_index_search(client: TestClient, index: GalleryIndex) -> None:
    img = person(2, seed=7)
    body = upload(client, png_bytes(img, "JPEG"), k=4, name="query.txt", ctype="text/plain").json()
    # Content decides, not the name or declared type; the JPEG round trip is what the server embedded.
    decoded = Image.open(io.BytesIO(png_bytes(img, "JPEG"))).convert("RGB")
    scores, ids = index.search(embed_image(decoded)[None], 4)
    assert [r["id"] for r in body["results"]] == ids[0].tolist()
    np.testing.assert_allclose([r["score"] for r in body["results"]], scores[0], atol=1e-6)


def test_gallery_serves_the_indexed_file(client: TestClient, index: GalleryIndex) -> None:
    for eid in (0, len(index) - 1):
        response = client.get(f"/gallery/{eid}")
        assert response.status_code == 200
        assert response.content == Path(index.entry(eid).path).read_bytes()
        assert response.headers["content-type"] == "image/png"


def test_gallery_etag_revalidation(client: TestClient) -> None:
    first = client.get("/gallery/3")
    etag = first.headers["etag"]
    again = client.get("/gallery/3", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/gallery/3", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/gallery/4").headers["etag"] != etag


@pytest.mark.parametrize("bad", ["999", "-1", "18"])
def test_gallery_unknown_id_is_404(client: TestClient, bad: str) -> None:
    response = client.get(f"/gallery/{bad}")
    assert response.status_code == 404 and "no gallery entry" in response.json()["detail"]


@pytest.mark.parametrize("bad", ["abc", "..%2F..%2Fetc%2Fpasswd", "1.5"])
def test_gallery_rejects_anything_but_an_integer_id(client: TestClient, bad: str) -> None:
    response = client.get(f"/gallery/{bad}")
    assert response.status_code in (404, 422)
    assert b"root:" not in response.content


def test_gallery_path_traversal_never_reaches_files(client: TestClient) -> None:
    for url in ["/gallery/../../etc/passwd", "/gallery/%2e%2e/%2e%2e/etc/passwd", "/static/../../etc/passwd"]:
        response = client.get(url)
        assert response.status_code == 404 and b"root:" not in response.content


def test_text_search(client: TestClient) -> None:
    response = client.post(
        "/search/text", json={"text": "a person in a Blue jacket, yellow trousers", "k": 3}
    )
    assert response.status_code == 200, response.text
    assert [r["pid"] for r in response.json()["results"]] == [2, 2, 2]  # pid 2: blue over yellow


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"text": "   "}, 400, "text is empty"),
        ({"text": ""}, 422, "at least 1"),
        ({"k": 3}, 422, "text"),
        ({"text": "red", "k": 0}, 422, "between 1 and 100"),
        ({"text": "red", "k": 101}, 422, "between 1 and 100"),
        ({"text": "x" * 2001}, 422, "at most 2000"),
    ],
)
def test_text_search_bad_input(client: TestClient, payload: dict, status: int, message: str) -> None:
    response = client.post("/search/text", json=payload)
    assert response.status_code == status
    assert message in str(response.json()["detail"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a decodable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a decodable image"),  # a PNG signature, then garbage
    ],
)
def test_image_search_rejects_non_images(client: TestClient, data: bytes, message: str) -> None:
    response = upload(client, data)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_truncated_image_is_rejected(client: TestClient) -> None:
    data = png_bytes(person(0, seed=1))
    response = upload(client, data[: len(data) // 2])
    assert response.status_code == 400 and "not a decodable image" in response.json()["detail"]


def test_missing_field_and_wrong_content_type(client: TestClient) -> None:
    response = client.post("/search/image", files={"photo": ("q.png", png_bytes(person(0, 1)), "image/png")})
    assert response.status_code == 400 and "'file'" in response.json()["detail"]
    response = client.post("/search/image", data={"file": "not a file"})
    assert response.status_code in (400, 415)
    response = client.post("/search/image", json={"file": "x"})
    assert response.status_code == 415 and "multipart/form-data" in response.json()["detail"]


@pytest.mark.parametrize("k", ["0", "101", "abc"])
def test_image_search_bad_k(client: TestClient, k: str) -> None:
    assert upload(client, png_bytes(person(0, 1)), k=k).status_code == 422


def test_oversized_upload_is_413(client: TestClient) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    big = png_bytes(Image.fromarray(noise))  # ~480 kB of incompressible pixels, limit is 200 kB
    assert len(big) > 200_000
    response = upload(client, big)
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_upload_limit_is_exact(index: GalleryIndex) -> None:
    data = png_bytes(person(0, 1))
    for limit, status in [(len(data) - 1, 413), (len(data), 200)]:
        with TestClient(create_app(index, embed_image=embed_image, max_upload_bytes=limit)) as c:
            response = upload(c, data)
            assert response.status_code == status
            if status == 413:
                assert f"limit is {limit} bytes" in response.json()["detail"]


def test_streamed_body_without_length_is_cut_off(client: TestClient) -> None:
    boundary = "XyZ"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.png"\r\n\r\n').encode()

    def chunks():
        yield head
        for _ in range(40):  # 40 x 16 kB = 640 kB, announced by no Content-Length header
            yield b"\x00" * 16384

    response = client.post(
        "/search/image",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


def test_too_many_pixels_is_refused() -> None:
    img = Image.new("RGB", (3000, 3000))
    with pytest.raises(HTTPException, match="limit is 1000000 pixels") as err:
        decode_image(png_bytes(img), max_pixels=1_000_000)
    assert err.value.status_code == 413
    assert decode_image(png_bytes(img), max_pixels=9_000_000).size == (3000, 3000)


def test_missing_embedders_answer_501(index: GalleryIndex) -> None:
    with TestClient(create_app(index)) as c:
        assert c.get("/health").json()["search"] == {"image": False, "text": False}
        response = c.post("/search/text", json={"text": "red"})
        assert response.status_code == 501 and "no text embedder" in response.json()["detail"]
        response = upload(c, png_bytes(person(0, 1)))
        assert response.status_code == 501 and "no image embedder" in response.json()["detail"]


def test_broken_embedder_is_a_clear_500(index: GalleryIndex) -> None:
    app = create_app(
        index, embed_image=lambda img: np.ones(DIM + 1), embed_text=lambda t: np.full(DIM, np.nan)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        response = upload(c, png_bytes(person(0, 1)))
        assert response.status_code == 500 and "returned shape (17,)" in response.json()["detail"]
        response = c.post("/search/text", json={"text": "red"})
        assert response.status_code == 500 and "non-finite" in response.json()["detail"]


def test_missing_gallery_file_is_404(tmp_path: Path) -> None:
    index = build_index(tmp_path)
    Path(index.entry(0).path).unlink()
    with TestClient(create_app(index)) as c:
        response = c.get("/gallery/0")
        assert response.status_code == 404 and "missing on the server" in response.json()["detail"]
        assert c.get("/gallery/1").status_code == 200


def test_relative_paths_resolve_against_image_root(tmp_path: Path) -> None:
    index = build_index(tmp_path, relative=True)
    assert not Path(index.entry(0).path).is_absolute()
    with TestClient(create_app(index, image_root=tmp_path)) as c:
        assert c.get("/gallery/0").content == (tmp_path / index.entry(0).path).read_bytes()


def test_centroid_mode(tmp_path: Path) -> None:
    index = build_index(tmp_path, mode="centroid")
    with TestClient(create_app(index, embed_image=embed_image)) as c:
        assert c.get("/health").json()["count"] == N_IDS
        results = upload(c, png_bytes(person(4, seed=5)), k=10).json()["results"]
        assert len(results) == N_IDS and len({r["pid"] for r in results}) == N_IDS
        assert results[0]["pid"] == 4 and results[0]["num_images"] == PER_ID and results[0]["camid"] == -1
        # /gallery/{id} serves the identity's representative image, one of its members.
        image = c.get(results[0]["image_url"])
        members = index.entry(results[0]["id"]).members
        assert image.status_code == 200 and image.content in [Path(m).read_bytes() for m in members]


def test_model_runs_in_worker_threads_without_blocking_the_loop(index: GalleryIndex) -> None:
    threads: list[str] = []
    release = threading.Event()

    def slow_embed(img: Image.Image) -> np.ndarray:
        threads.append(threading.current_thread().name)
        release.wait(5)
        return embed_image(img)

    app = create_app(index, embed_image=slow_embed, workers=2)
    data = png_bytes(person(1, 3))

    async def scenario() -> tuple[float, list[int]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            searches = [
                asyncio.create_task(ac.post("/search/image", files={"file": ("q.png", data, "image/png")}))
                for _ in range(2)
            ]
            while len(threads) < 2:  # both searches are inside the (blocked) model
                await asyncio.sleep(0.01)
            start = time.perf_counter()
            health = await ac.get("/health")  # must be answered while the model threads are busy
            took = time.perf_counter() - start
            assert health.status_code == 200
            release.set()
            return took, [r.status_code for r in await asyncio.gather(*searches)]

    took, codes = asyncio.run(scenario())
    assert codes == [200, 200]
    assert took < 1.0
    assert all(name.startswith("reidkit-serve") for name in threads)


class TinyEmbedder:
    """An `Embedder`: mean colour of each image (or token ids as a vector) through a fixed linear map."""

    dim = DIM

    def __init__(self) -> None:
        self.weight = torch.from_numpy(PROJECTION[:3].copy()).float()  # [3, D]
        self.batches: list[Batch] = []

    def embed(self, batch: Batch) -> torch.Tensor:
        self.batches.append(batch)
        if batch.tokens is not None:
            x = batch.tokens.float()[:, :3]  # [B, 3]
        else:
            x = batch.images.mean(dim=(2, 3))  # [B, 3]
        return torch.nn.functional.normalize(x @ self.weight, dim=1)  # [B, D]


def test_image_embed_fn_adapts_an_embedder() -> None:
    embedder = TinyEmbedder()

    def transform(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)  # [3, H, W]

    img = person(3, seed=1)
    got = image_embed_fn(embedder, transform)(img)
    mean = np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(axis=0) / 255.0  # [3]
    want = mean @ PROJECTION[:3]
    assert got.shape == (DIM,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-5)
    (batch,) = embedder.batches
    assert batch.images.shape == (1, 3, 128, 64) and len(batch) == 1


def test_text_embed_fn_adapts_an_embedder() -> None:
    embedder = TinyEmbedder()

    def to_batch(text: str) -> Batch:
        tokens = torch.tensor([[len(w) for w in text.split()][:3]])  # [1, 3]
        zeros = torch.zeros(1, dtype=torch.long)
        return Batch(torch.zeros(1, 3, 1, 1), zeros, zeros, zeros, tokens=tokens, lengths=torch.tensor([3]))

    got = text_embed_fn(embedder, to_batch)("a blue shirt")  # word lengths 1, 4, 5
    want = np.array([1.0, 4.0, 5.0]) @ PROJECTION[:3]
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-5)


def _saved_and_loaded(index: GalleryIndex, folder: Path) -> GalleryIndex:
    index.save(folder)
    return GalleryIndex.load(folder)


def test_gallery_serves_only_images_under_the_recorded_root(tmp_path: Path, caplog) -> None:
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    loaded = _saved_and_loaded(build_index(gallery), tmp_path / "idx")
    assert loaded.gallery_root == str(gallery.resolve())
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    outside_image = tmp_path / "outside.png"
    person(0, 1).save(outside_image)
    # after the build, entry 0 becomes a symlink to a text file, entry 1 to an image outside the root
    for eid, target in ((0, secret), (1, outside_image)):
        p = Path(loaded.entry(eid).path)
        p.unlink()
        p.symlink_to(target)
    # entry 2 is replaced by a non-image file inside the root
    Path(loaded.entry(2).path).write_text("not an image")
    with TestClient(create_app(loaded)) as c, caplog.at_level("WARNING"):
        for eid in (0, 1, 2):
            response = c.get(f"/gallery/{eid}")
            assert response.status_code == 404 and "root:x" not in response.text, eid
        ok = c.get("/gallery/3")
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    assert sum("refused" in r.getMessage() for r in caplog.records) == 3


def test_index_edited_to_name_a_system_file_is_not_served(tmp_path: Path) -> None:
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    index = build_index(gallery)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    # an attacker rewrites entry 0's path and saves (checksums and recorded root recomputed)
    index._entries[0] = replace(index._entries[0], path=str(secret))
    index._by_path = {e.path: e.id for e in index._entries}
    loaded = _saved_and_loaded(index, tmp_path / "idx")
    with TestClient(create_app(loaded)) as c:
        response = c.get("/gallery/0")
        assert response.status_code == 404 and "secret" not in response.text


def test_422_does_not_echo_an_oversized_input(client: TestClient) -> None:
    huge = "x" * 150_000  # over the 2,000-character limit, under the body limit
    response = client.post("/search/text", json={"text": huge, "k": 5})
    assert response.status_code == 422
    assert len(response.content) < 2_000 and "xxxxxxxxxx" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "text"]


def test_lone_surrogate_in_text_is_a_422_not_a_500(client: TestClient) -> None:
    body = b'{"text": "red jacket \\ud800", "k": 3}'
    response = client.post("/search/text", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422  # the default handler echoed the surrogate back and failed (500)
    assert response.json()["detail"][0]["loc"] == ["body", "text"]


def test_small_file_that_decodes_huge_is_refused_by_default(client: TestClient) -> None:
    img = Image.new("L", (6300, 6300))  # ~40 MP of zeros: a PNG of a few hundred KB at most
    data = png_bytes(img)
    assert len(data) < 200_000
    response = upload(client, data)
    assert response.status_code == 413 and f"limit is {DEFAULT_MAX_PIXELS} pixels" in response.text


def test_jpeg_decodes_at_a_reduced_scale_when_the_model_size_is_known() -> None:
    data = png_bytes(person(1, 2).resize((1024, 2048)), fmt="JPEG")
    full = decode_image(data, max_pixels=4_000_000)
    small = decode_image(data, max_pixels=4_000_000, size=(128, 256))
    assert full.size == (1024, 2048) and small.size[0] >= 128 and small.size[1] >= 256
    assert small.size[0] * small.size[1] < full.size[0] * full.size[1] // 4


def test_service_rerank_option_orders_image_results_like_the_index(index: GalleryIndex) -> None:
    options = {"k1": 4, "k2": 2, "lambda_value": 0.3}
    img = person(2, seed=999)
    with TestClient(create_app(index, embed_image=embed_image, rerank=options)) as c:
        response = upload(c, png_bytes(img), k=6)
    assert response.status_code == 200
    got = [r["id"] for r in response.json()["results"]]
    want = [h.entry.id for h in index.query(embed_image(img)[None, :], 6, options)[0]]
    assert got == want and len(got) == 6
