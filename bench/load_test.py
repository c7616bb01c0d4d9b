"""Load test of the search service on loopback: N concurrent clients send a fixed number of requests.

    python bench/load_test.py [--clients 8] [--requests 400] [--gallery 1000] [--model-ms 0] [--workers 2]
    python bench/load_test.py --heavy 0.1 [--max-pixels 40000000]   # 10% of uploads: a 6300x6300 PNG

The script starts the server itself (uvicorn in a child process, on a free 127.0.0.1 port) over a
synthetic gallery of generated images with a fake embedder (a fixed random projection of a thumbnail;
--model-ms adds a simulated model cost per embedding, sleeping like a GIL-free torch forward). Clients are
threads with their own httpx connection; the mix is 70% image search (PNG upload), 15% text search and
15% gallery image fetches; --heavy moves a share of the image searches to a small PNG that decodes to
6300 x 6300 pixels (the server refuses it with 413 when it exceeds --max-pixels, by default the service's
own limit). Every request has a timeout and the run has a deadline, so it always ends.
Reports p50/p90/p99 latency and errors per endpoint, prints a table and writes bench/results/load_test.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from reidkit.utils import atomic_write

HERE = Path(__file__).resolve().parent
DIM = 128
COLOURS = np.array(
    [(220, 30, 30), (30, 170, 60), (30, 60, 220), (235, 210, 40), (20, 20, 20), (240, 240, 240)]
)
WORDS = ["red", "green", "blue", "yellow", "black", "white"]


def person(pid: int, seed: int) -> Image.Image:
    """A 64x128 figure whose top / bottom colours encode the identity, with pixel noise."""
    top, bottom = COLOURS[pid % 6], COLOURS[(pid // 6) % 6]
    arr = np.zeros((128, 64, 3))
    arr[:64], arr[64:] = top, bottom
    arr += np.random.default_rng(seed).normal(0, 15, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_embedders(model_ms: float):
    """Fake `embed_image` / `embed_text` callables (what the service expects), optionally slowed down."""
    projection = np.random.default_rng(1234).standard_normal((8 * 16 * 3, DIM))

    def embed_image(img: Image.Image) -> np.ndarray:
        if model_ms:
            time.sleep(model_ms / 1000)
        x = np.asarray(img.convert("RGB").resize((8, 16)), dtype=np.float64).ravel() / 255.0 - 0.5
        v = x @ projection  # [D]
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_text(text: str) -> np.ndarray:
        words = [w for w in text.split() if w in WORDS] + ["white", "white"]
        pid = WORDS.index(words[0]) + 6 * WORDS.index(words[1])
        arr = np.zeros((128, 64, 3), dtype=np.uint8)
        arr[:64], arr[64:] = COLOURS[pid % 6], COLOURS[(pid // 6) % 6]
        return embed_image(Image.fromarray(arr))

    return embed_image, embed_text


def serve(fd: int, gallery_size: int, workers: int, model_ms: float, max_pixels: int | None) -> None:
    """Child process: build the synthetic gallery and serve it on the inherited listening socket."""
    import uvicorn

    from reidkit.index import GalleryIndex
    from reidkit.serve.app import create_app
    from reidkit.types import Features, Record

    embed_image, embed_text = make_embedders(0.0)
    root = Path(tempfile.mkdtemp(prefix="reidkit_load_"))
    records, feats = [], []
    for i in range(gallery_size):
        pid = i % 36
        img = person(pid, seed=i)
        path = root / f"{pid:04d}_c{i % 6}_{i:06d}.png"
        img.save(path)
        records.append(Record(str(path), pid, i % 6))
        feats.append(embed_image(img))
    pids = np.array([r.pid for r in records])
    features = Features(np.stack(feats), pids, np.array([r.camid for r in records]), np.arange(gallery_size))
    index = GalleryIndex.build(features, records)
    embed_image, embed_text = make_embedders(model_ms)
    limit = {} if max_pixels is None else {"max_pixels": max_pixels}
    app = create_app(index, embed_image=embed_image, embed_text=embed_text, workers=workers, **limit)
    sock = socket.socket(fileno=fd)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {
            "p50_ms": float("nan"),
            "p90_ms": float("nan"),
            "p99_ms": float("nan"),
            "max_ms": float("nan"),
        }
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(max(ms))}


def run_clients(
    base: str, clients: int, total: int, gallery_size: int, deadline_s: float, heavy: float = 0.0
) -> tuple[list, float]:
    """Send `total` requests from `clients` threads; returns [(endpoint, ok, ms, error)] and wall seconds."""
    queries = [png_bytes(person(pid, seed=10_000 + pid)) for pid in range(36)]
    huge = png_bytes(Image.new("L", (6300, 6300)))  # a few hundred KB that decode to 40 MP
    rng = np.random.default_rng(0)
    shares = [0.7 * (1 - heavy), 0.15, 0.15, 0.7 * heavy]
    plan = rng.choice(["image", "text", "gallery", "heavy"], size=total, p=shares)
    picks = rng.integers(0, 1 << 30, size=total)
    counter = iter(range(total))
    lock = threading.Lock()
    results: list[tuple[str, bool, float, str]] = []
    stop_at = time.monotonic() + deadline_s

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30.0) as client:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                kind, pick = plan[i], int(picks[i])
                t0 = time.perf_counter()
                try:
                    if kind in ("image", "heavy"):
                        data = queries[pick % len(queries)] if kind == "image" else huge
                        r = client.post("/search/image?k=10", files={"file": ("q.png", data, "image/png")})
                    elif kind == "text":
                        text = f"a person in {WORDS[pick % 6]} top and {WORDS[(pick // 6) % 6]} trousers"
                        r = client.post("/search/text", json={"text": text, "k": 10})
                    else:
                        r = client.get(f"/gallery/{pick % gallery_size}")
                    good = (200, 413) if kind == "heavy" else (200,)  # refusing a heavy upload is right
                    ok, err = r.status_code in good, "" if r.status_code in good else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:  # counted as an error, never hidden
                    ok, err = False, f"{type(e).__name__}: {e}"
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    results.append((str(kind), ok, ms, err))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + 35)
    return results, time.perf_counter() - start


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--gallery", type=int, default=1000, help="synthetic gallery images")
    parser.add_argument("--workers", type=int, default=2, help="server model/search threads")
    parser.add_argument("--model-ms", type=float, default=0.0, help="simulated model time per embedding")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds before clients give up")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "load_test.json")
    parser.add_argument("--heavy", type=float, default=0.0, help="share of uploads decoding to 40 MP")
    parser.add_argument("--max-pixels", type=int, default=None, help="server decode limit (default: its own)")
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd, args.gallery, args.workers, args.model_ms, args.max_pixels)
        return

    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else ~40 ms delayed-ACK stalls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only, on a free port chosen by the kernel
    sock.listen(128)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cmd = [sys.executable, __file__, "--serve-fd", str(sock.fileno()), "--gallery", str(args.gallery)]
    cmd += ["--workers", str(args.workers), "--model-ms", str(args.model_ms)]
    if args.max_pixels is not None:
        cmd += ["--max-pixels", str(args.max_pixels)]
    server = subprocess.Popen(cmd, pass_fds=(sock.fileno(),))
    try:
        ready_by = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited early with code {server.returncode}")
            try:
                if httpx.get(base + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > ready_by:
                    raise
            time.sleep(0.2)
        results, wall = run_clients(
            base, args.clients, args.requests, args.gallery, args.deadline, args.heavy
        )
    finally:
        server.terminate()
        server.wait(30)
        sock.close()

    rows = {}
    for kind in ("image", "text", "gallery", "heavy", "all"):
        sel = [r for r in results if kind in ("all", r[0])]
        rows[kind] = {
            "requests": len(sel),
            "errors": sum(not r[1] for r in sel),
            **percentiles([r[2] for r in sel if r[1]]),
        }
    unsent = args.requests - len(results)
    errors = sorted({r[3] for r in results if not r[1]})
    print(
        f"\n{args.clients} clients, {args.requests} requests, gallery {args.gallery}, server workers "
        f"{args.workers}, simulated model {args.model_ms} ms, heavy uploads {args.heavy:.0%} "
        f"(server max_pixels {args.max_pixels or 'default'}); "
        f"{len(results) / wall:.1f} req/s over {wall:.1f} s"
    )
    header = f"{'endpoint':9s} {'requests':>8s} {'errors':>6s}" + "".join(
        f" {c:>8s}" for c in ("p50 ms", "p90 ms", "p99 ms", "max ms")
    )
    print(header)
    print("-" * len(header))
    for kind, r in rows.items():
        print(
            f"{kind:9s} {r['requests']:8d} {r['errors']:6d} {r['p50_ms']:8.1f} {r['p90_ms']:8.1f} "
            f"{r['p99_ms']:8.1f} {r['max_ms']:8.1f}"
        )
    if unsent:
        print(f"{unsent} requests not sent before the deadline")
    for e in errors[:10]:
        print("error:", e)
    out = args.out
    result = {
        "benchmark": "load_test",
        "args": {k: str(v) for k, v in vars(args).items() if k != "serve_fd"},
        "wall_s": wall,
        "throughput_rps": len(results) / wall,
        "unsent": unsent,
        "endpoints": rows,
        "error_messages": errors,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if rows["all"]["errors"] or unsent:
        sys.exit(1)


if __name__ == "__main__":
    main()
