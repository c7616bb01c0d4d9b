"""The web page in headless Chromium (Debian's `chromium`, driven by Playwright): upload, drop, type.

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright install`: no downloads).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidkit.index import GalleryIndex
from reidkit.serve.app import create_app
from reidkit.types import Features, Record

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("REIDKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path("/tmp/reidkit_web_page.png")
COLOURS = [(220, 30, 30), (30, 170, 60), (30, 60, 220), (235, 210, 40), (20, 20, 20), (240, 240, 240)]
WORDS = ["red", "green", "blue", "yellow", "black", "white"]
PROJECTION = np.random.default_rng(1234).standard_normal((4 * 8 * 3, 16))


def person(pid: int, seed: int) -> Image.Image:
    """A 64x128 figure: top colour COLOURS[pid], bottom COLOURS[pid+1], with pixel noise."""
    arr = np.zeros((128, 64, 3))
    arr[:64], arr[64:] = COLOURS[pid % 6], COLOURS[(pid + 1) % 6]
    arr[:, :8] = arr[:, -8:] = 200  # background margins, like a pedestrian crop
    arr += np.random.default_rng(seed).normal(0, 12, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def embed_image(img: Image.Image) -> np.ndarray:
    """Fake embedder: 4x8 thumbnail through a fixed random projection, L2-normalised."""
    v = (np.asarray(img.convert("RGB").resize((4, 8)), dtype=np.float64).ravel() / 255.0 - 0.5) @ PROJECTION
    return (v / np.linalg.norm(v)).astype(np.float32)


def embed_text(text: str) -> np.ndarray:
    """Fake text embedder: the first two colour words are the top and bottom colours."""
    words = [w for w in text.lower().split() if w in WORDS] + ["white", "white"]
    top, bottom = WORDS.index(words[0]), WORDS.index(words[1])
    arr = np.full((128, 64, 3), 200, dtype=np.uint8)
    arr[:64, 8:-8], arr[64:, 8:-8] = COLOURS[top], COLOURS[bottom]
    return embed_image(Image.fromarray(arr))


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    del sync_api
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    root = tmp_path_factory.mktemp("gallery")
    records, feats = [], []
    for pid in range(6):
        for cam in range(4):
            img = person(pid, seed=10 * pid + cam)
            path = root / f"{pid:04d}_c{cam}.png"
            img.save(path)
            records.append(Record(str(path), pid, cam))
            feats.append(embed_image(img))
    n = len(records)
    features = Features(np.stack(feats), np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6), np.arange(n))
    index = GalleryIndex.build(features, records)
    app = create_app(index, embed_image=embed_image, embed_text=embed_text)
    # A free loopback port, held open so nothing else can take it. proto=IPPROTO_TCP lets asyncio set
    # TCP_NODELAY on accepted connections (with proto 0 every keep-alive response waits ~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def page(server_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            pg = browser.new_page(viewport={"width": 1100, "height": 760})
            pg.set_default_timeout(20_000)
            pg.goto(server_url + "/")
            yield pg
        finally:
            browser.close()


def card_pids(pg: object) -> list[int]:
    return [int(x) for x in pg.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.pid)")]


def texts(pg: object, selector: str) -> list[str]:
    return pg.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")


# Waits use Playwright's `expect` (no string eval), because the page's CSP forbids 'unsafe-eval'.


def test_page_shows_index_status(page: object) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text("24 images")
    assert "search by image and text" in page.inner_text("#status")


def test_upload_shows_ranked_thumbnails(page: object) -> None:
    from playwright.sync_api import expect

    query = {"name": "q.png", "mimeType": "image/png", "buffer": png(person(3, 77))}
    page.set_input_files("#file", files=[query])
    expect(page.locator(".card")).to_have_count(10)
    pids = card_pids(page)
    assert pids[:4] == [3, 3, 3, 3], pids
    assert texts(page, ".rank")[:3] == ["#1", "#2", "#3"]
    scores = [float(t.split()[1]) for t in texts(page, ".score")]
    assert scores == sorted(scores, reverse=True)
    assert "ID 3 · cam" in page.inner_text(".card .sub")
    for img in page.locator(".card img").all():  # every thumbnail was fetched and decoded
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("i => i.naturalWidth") > 0
    assert page.is_visible("#preview")
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_dropping_a_photo_searches(page: object) -> None:
    from playwright.sync_api import expect

    data = base64.b64encode(png(person(1, 5))).decode()
    page.select_option("#k", "5")
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        data,
    )
    expect(page.locator("#summary")).to_contain_text("5 images for the photo")
    assert card_pids(page)[:4] == [1, 1, 1, 1]


def test_typed_description_searches(page: object) -> None:
    from playwright.sync_api import expect

    page.fill("#text", "a man in a blue shirt and yellow trousers")
    page.click("#text-search")
    expect(page.locator("#summary")).to_contain_text("blue shirt")
    assert card_pids(page)[:4] == [2, 2, 2, 2]


def test_non_image_upload_shows_an_error(page: object) -> None:
    from playwright.sync_api import expect

    bad = {"name": "x.png", "mimeType": "image/png", "buffer": b"not an image"}
    page.set_input_files("#file", files=[bad])
    expect(page.locator("#error")).to_contain_text("not a decodable image")


def test_cards_name_the_file_camera_and_distractors(page: object) -> None:
    from playwright.sync_api import expect

    query = {"name": "q0.png", "mimeType": "image/png", "buffer": png(person(0, 91))}
    page.select_option("#k", "10")
    page.set_input_files("#file", files=[query])
    expect(page.locator(".card")).to_have_count(10)
    assert card_pids(page)[:4] == [0, 0, 0, 0]  # pid 0: the gallery's distractor identity
    first = page.locator(".card").first
    sub, name = first.locator(".sub").inner_text(), first.locator(".name").inner_text()
    assert sub.startswith("distractor · camera ") and "ID 0" not in sub
    cam = int(sub.rsplit(" ", 1)[1])
    assert name == f"0000_c{cam - 1}.png"  # stored camid c, shown as the dataset numbers it (c + 1)
    link = first.locator("a")
    assert link.get_attribute("target") == "_blank" and link.get_attribute("href").startswith("/gallery/")
    assert "ID -1" not in page.inner_text("#grid")
    assert first.locator(".score").inner_text().startswith("similarity ")


def test_a_failed_upload_clears_old_results_and_says_why(page: object) -> None:
    from playwright.sync_api import expect

    good = {"name": "q.png", "mimeType": "image/png", "buffer": png(person(2, 12))}
    page.set_input_files("#file", files=[good])
    expect(page.locator(".card")).to_have_count(10)
    bad = {"name": "holiday.png", "mimeType": "image/png", "buffer": b"GIF? no: just text"}
    page.set_input_files("#file", files=[bad])
    expect(page.locator("#error")).to_contain_text("not a format reidkit reads")
    expect(page.locator(".card")).to_have_count(0)
    assert page.inner_text("#summary") == ""
    assert "BytesIO" not in page.inner_text("body") and "object at 0x" not in page.inner_text("body")
