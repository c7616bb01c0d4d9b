"""Dataset checking for `reidkit datasets check`: run a reader, decode every image, check the protocol.

`check_dataset` reports problems as lists of messages (each naming the offending files) instead of
raising, so one run shows everything wrong with a dataset; `format_report` renders the result as text.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile

from reidkit.data.readers import DatasetError, read_split
from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

SHOW_FIRST = 5
# What PIL raises for missing, unreadable, truncated or corrupt files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass
class CheckResult:
    """Outcome of `check_dataset`: statistics of the split (None if it could not be read) and problems."""

    root: str
    format: str
    protocol: str | None = None
    split_stats: dict[str, dict[str, Any]] | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images_checked: int = 0
    image_sizes: dict[str, tuple[int, int]] | None = None  # min / median / max (width, height), per axis

    @property
    def ok(self) -> bool:
        """True when no errors were found (warnings allowed)."""
        return not self.errors


class _Collect(logging.Handler):
    """Collects WARNING+ messages of the readers' loggers while a reader runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _collect_reader_warnings() -> Iterator[_Collect]:
    handler = _Collect()
    readers_logger = logging.getLogger("reidkit.data.readers")
    readers_logger.addHandler(handler)
    try:
        yield handler
    finally:
        readers_logger.removeHandler(handler)


def _listing(items: Iterable[Any]) -> str:
    items = list(items)
    more = f" (and {len(items) - SHOW_FIRST} more)" if len(items) > SHOW_FIRST else ""
    return ", ".join(str(i) for i in items[:SHOW_FIRST]) + more


def check_dataset(
    root: str | Path,
    format: str,
    *,
    decode_images: bool = True,
    num_threads: int | None = None,
    **options: Any,
) -> CheckResult:
    """Read `root` with reader `format`, then check images, parts, identities and duplicates.

    Only `DatasetError` from the reader is reported as an error; unknown formats/options still raise.
    """
    result = CheckResult(root=str(root), format=format)
    with _collect_reader_warnings() as collected:
        try:
            split = read_split(format, root, **options)
        except DatasetError as e:
            result.errors.append(str(e))
            return result
        finally:
            result.warnings += collected.messages
    result.protocol = split.protocol
    result.split_stats = split.stats()
    _check_parts(split, result)
    _check_identities(split, result)
    _check_duplicates(split, result)
    if decode_images:
        _check_images(split, result, num_threads)
    else:
        missing = [p for p in _unique_paths(split) if not os.path.isfile(p)]
        if missing:
            result.errors.append(f"{len(missing)} image files do not exist: {_listing(missing)}")
    return result


def _unique_paths(split: Split) -> list[str]:
    return list(dict.fromkeys(r.path for part in (split.train, split.query, split.gallery) for r in part))


def _check_parts(split: Split, result: CheckResult) -> None:
    for part in ("query", "gallery"):
        if not getattr(split, part):
            result.errors.append(f"{part} is empty; expected at least one {part} record")
    if not split.train:
        result.warnings.append("train is empty: the dataset can be used for evaluation only")
    if split.protocol == "text":
        no_text = [r.path for r in split.train + split.query if not r.text]
        if no_text:
            result.errors.append(f"{len(no_text)} train/query records have no caption: {_listing(no_text)}")


def _check_identities(split: Split, result: CheckResult) -> None:
    """Every query identity must have a valid match in the gallery (cross-camera for re-id)."""
    gallery_cams: dict[int, set[int]] = defaultdict(set)
    for r in split.gallery:
        gallery_cams[r.pid].add(r.camid)
    absent = [r for r in split.query if r.pid not in gallery_cams]
    if absent:
        ids = sorted({r.pid for r in absent})
        result.errors.append(
            f"{len(ids)} query identities never appear in the gallery ({len(absent)} queries), e.g. pid "
            f"{ids[0]}: {_listing(r.path for r in absent)}"
        )
    if split.protocol == "reid":
        same_cam = [
            r
            for r in split.query
            if r.pid in gallery_cams and r.camid >= 0 and gallery_cams[r.pid] == {r.camid}
        ]
        if same_cam:
            result.warnings.append(
                f"{len(same_cam)} queries have gallery matches only from their own camera (evaluation skips "
                f"them): {_listing(r.path for r in same_cam)}"
            )
        if split.query and all(r.camid < 0 for r in split.query + split.gallery):
            result.warnings.append("no camera ids: evaluation treats query and gallery as different cameras")
    if split.protocol == "fine_grained":
        count: dict[int, int] = defaultdict(int)
        for r in split.gallery:
            count[r.pid] += 1
        lonely = [r.path for r in split.query if count.get(r.pid, 0) < 2]
        if lonely:
            result.warnings.append(
                f"{len(lonely)} queries are the only image of their class (no match besides themselves): "
                f"{_listing(lonely)}"
            )


def _check_duplicates(split: Split, result: CheckResult) -> None:
    """Same file twice in a part (conflicting labels are errors) and files shared by train and test."""
    for part in ("train", "query", "gallery"):
        recs: list[Record] = getattr(split, part)
        key = (
            (lambda r: (r.path, r.text))
            if split.protocol == "text" and part != "gallery"
            else (lambda r: r.path)
        )
        seen: dict[Any, Record] = {}
        dups: list[str] = []
        pids: dict[str, set[int]] = defaultdict(set)
        for r in recs:
            pids[r.path].add(r.pid)
            if key(r) in seen:
                dups.append(r.path)
            seen[key(r)] = r
        conflict = sorted(p for p, s in pids.items() if len(s) > 1)
        if conflict:
            result.errors.append(
                f"{part}: {len(conflict)} images carry more than one pid: {_listing(conflict)}"
            )
        if dups:
            result.warnings.append(f"{part}: {len(dups)} duplicate records: {_listing(dups)}")
    train = {r.path for r in split.train}
    test = {r.path for r in split.query} | {r.path for r in split.gallery}
    leak = sorted(train & test)
    if leak:
        result.errors.append(f"{len(leak)} images are in train and in query/gallery: {_listing(leak)}")
    if split.protocol == "reid":
        both = sorted({r.path for r in split.query} & {r.path for r in split.gallery})
        if both:
            result.errors.append(f"{len(both)} images are both query and gallery: {_listing(both)}")


def _decode(path: str) -> tuple[str, str | None, str | None, tuple[int, int] | None]:
    """(path, sha256 or None, error or None, (width, height) or None) for one image file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            size = im.size
    except FileNotFoundError:
        return path, None, "file does not exist", None
    except DECODE_ERRORS as e:
        return path, None, f"{type(e).__name__}: {e}", None
    return path, hashlib.sha256(data).hexdigest(), None, size


def _check_images(split: Split, result: CheckResult, num_threads: int | None) -> None:
    """Decode every image (catches missing, unreadable and truncated files) and find byte-identical copies."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        result.warnings.append(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated images cannot be detected"
        )
    paths = _unique_paths(split)
    workers = num_threads or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(_decode, paths, chunksize=64))
    result.images_checked = len(decoded)
    failed = [f"{p} ({err})" for p, _, err, _ in decoded if err is not None]
    if failed:
        result.errors.append(f"{len(failed)} of {len(paths)} images cannot be read: {_listing(failed)}")
    by_hash: dict[str, list[str]] = defaultdict(list)
    for p, digest, _, _ in decoded:
        if digest is not None:
            by_hash[digest].append(p)
    pid_of = {r.path: r.pid for part in (split.train, split.query, split.gallery) for r in part}
    train = {r.path for r in split.train}
    kinds: dict[str, list[str]] = defaultdict(list)
    for group in by_hash.values():
        if len(group) < 2:
            continue
        shown = " = ".join(group)
        if len({pid_of[p] for p in group}) > 1:
            kinds["byte-identical images carry different pids"].append(shown)
        elif any(p in train for p in group) and any(p not in train for p in group):
            kinds["byte-identical images are both in train and in query/gallery"].append(shown)
        else:
            kinds["groups of byte-identical images (same pid)"].append(shown)
    for what, groups in kinds.items():
        result.warnings.append(f"{len(groups)} {what}: {_listing(groups)}")
    sizes = [s for *_, s in decoded if s is not None]
    if sizes:
        w = sorted(s[0] for s in sizes)
        h = sorted(s[1] for s in sizes)
        result.image_sizes = {
            "min": (w[0], h[0]),
            "median": (w[len(w) // 2], h[len(h) // 2]),
            "max": (w[-1], h[-1]),
        }


def format_report(result: CheckResult) -> str:
    """Plain-text report: per-part statistics, then every error and warning, then OK / FAILED."""
    lines = [f"dataset: {result.root} (format {result.format}, protocol {result.protocol or '?'})"]
    stats = result.split_stats or {}
    parts = [p for p in ("train", "query", "gallery") if p in stats]
    if parts:
        lines.append(f"{'part':<8} {'ids':>7} {'images':>8} {'records':>8} {'captions':>9}  cameras")
        for p in parts:
            s = stats[p]
            cams = " ".join(f"{c}:{n}" for c, n in s["cameras"].items()) or "-"
            lines.append(
                f"{p:<8} {s['ids']:>7} {s['images']:>8} {s['records']:>8} {s['captions']:>9}  {cams}"
            )
    if result.image_sizes:
        lines.append(
            "image size (w x h): "
            + ", ".join(f"{k} {v[0]}x{v[1]}" for k, v in result.image_sizes.items())
            + f" ({result.images_checked} images decoded)"
        )
    for title, msgs in (("errors", result.errors), ("warnings", result.warnings)):
        if msgs:
            lines.append(f"{title} ({len(msgs)}):")
            lines += [f"  - {m}" for m in msgs]
    lines.append("OK" if result.ok else f"FAILED: {len(result.errors)} error(s)")
    return "\n".join(lines)
