"""Helpers shared by the readers: the error type, folder listing, name parsing and the bad-file policy.

Readers only look at structure and names (no image decoding); `reidkit.data.check` decodes images.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
# A few unparseable / missing files in a large set are skipped with a warning; above this fraction the
# reader raises instead (a tiny set with one bad file is an error, a Market tree with one stray file is not).
BAD_FILE_TOLERANCE = 0.01
SHOW_FIRST = 5


class DatasetError(ValueError):
    """A dataset on disk does not have the expected layout, names or contents (the message says which)."""


class BadFiles:
    """Collects offending entries of one source (folder or list file) with the reason for each."""

    def __init__(self, source: Path, expected: str) -> None:
        self.source = source
        self.expected = expected
        self.items: list[str] = []

    def add(self, item: str | Path, reason: str = "") -> None:
        self.items.append(f"{item} ({reason})" if reason else str(item))

    def resolve(self, total: int, tolerance: float = BAD_FILE_TOLERANCE) -> None:
        """Raise when too many entries are bad (or all are), else log one warning with a count."""
        if not self.items:
            return
        n = len(self.items)
        first = "; ".join(self.items[:SHOW_FIRST])
        more = f" (and {n - SHOW_FIRST} more)" if n > SHOW_FIRST else ""
        msg = f"{self.source}: {n} of {total} entries are not {self.expected}: {first}{more}"
        if n >= total or n > tolerance * total:
            raise DatasetError(msg)
        logger.warning("%s; skipped them", msg)


def absolute(path: str | Path) -> Path:
    """User path -> absolute path (no symlink resolution, so paths stay as the user sees them)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def require_dir(path: Path, what: str) -> Path:
    """Return `path` if it is a folder, else raise naming it and what it should hold."""
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: {state}; expected {what}")
    return path


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a file, else raise naming it and what it should hold."""
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: {state}; expected {what}")
    return path


def find_root(root: str | Path, markers: Iterable[str], what: str) -> Path:
    """`root` itself if it holds all `markers`, else its single child folder that does (e.g. an unzipped
    `Market-1501-v15.09.15/`); otherwise a DatasetError listing what is missing."""
    root = require_dir(absolute(root), what)
    markers = list(markers)
    if all((root / m).exists() for m in markers):
        return root
    children = [c for c in sorted(root.iterdir()) if c.is_dir() and all((c / m).exists() for m in markers)]
    if len(children) == 1:
        return children[0]
    missing = [m for m in markers if not (root / m).exists()]
    raise DatasetError(f"{root}: missing {', '.join(missing)}; expected {what}")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name; other files (Thumbs.db, .txt) are ignored."""
    out = []
    skipped = 0
    with os.scandir(folder) as it:
        for e in it:
            if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                out.append(Path(e.path))
            elif e.is_file():
                skipped += 1
    if skipped:
        logger.debug("%s: ignored %d non-image files", folder, skipped)
    return sorted(_utf8_names(out), key=lambda p: p.name)


def _utf8_names(paths: list[Path]) -> list[Path]:
    """The paths, unchanged, if every one is valid UTF-8 (indexes, JSON and the web page store them as text);
    otherwise a DatasetError naming the first bad one."""
    for p in paths:
        try:
            str(p).encode("utf-8")
        except UnicodeEncodeError:
            shown = str(p).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise DatasetError(f"{shown}: the file name is not valid UTF-8; rename the file") from None
    return paths


def list_images_recursive(folder: Path) -> list[Path]:
    """Image files anywhere under `folder`, sorted by relative path."""
    out = [
        Path(d) / f
        for d, _, files in os.walk(folder)
        for f in files
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    ]
    return sorted(_utf8_names(out))


def parse_folder(
    folder: Path,
    parse: Callable[[str], tuple[int, int] | str],
    expected: str,
) -> list[tuple[Path, int, int]]:
    """Parse every image name in `folder` with `parse(stem) -> (pid, camid) | reason`; unparseable names
    follow the bad-file policy. Returns (path, pid, camid) sorted by name."""
    files = list_images(folder)
    if not files:
        raise DatasetError(f"{folder}: no image files; expected images named {expected}")
    bad = BadFiles(folder, f"named {expected}")
    out = []
    for p in files:
        got = parse(p.stem)
        if isinstance(got, str):
            bad.add(p.name, got)
        else:
            out.append((p, got[0], got[1]))
    bad.resolve(len(files))
    return out


MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)(?!\d)")


def parse_market_name(stem: str) -> tuple[int, int] | str:
    """`0002_c1s1_000451_03` / `0001_c2_f0046182` -> (pid, 0-based camera); a reason string if it fails."""
    m = MARKET_NAME.match(stem)
    if m is None:
        return "no '<pid>_c<camera>' prefix"
    cam = int(m.group(2))
    if cam < 1:
        return f"camera c{cam}: cameras are numbered from c1"
    return int(m.group(1)), cam - 1


def make_records(items: Iterable[tuple[Path, int, int]]) -> list[Record]:
    """(path, pid, camid) triples -> Records with absolute path strings."""
    return [Record(path=str(p), pid=pid, camid=cam) for p, pid, cam in items]


def require_nonempty(records: list[Record], part: str, source: Path, expected: str) -> list[Record]:
    """Raise when a part ended up empty (e.g. only junk images), naming the source."""
    if not records:
        raise DatasetError(f"{source}: the {part} part is empty; expected {expected}")
    return records


def read_market_style(
    root: Path,
    name: str,
    folders: dict[str, str],
    parse: Callable[[str], tuple[int, int] | str],
    expected: str,
    *,
    distractors: bool = False,
) -> Split:
    """Read a Market-1501-like tree: `folders` maps train/query/gallery to sub-folder names.

    pid -1 (junk) is dropped everywhere; with `distractors`, pid 0 is kept in the gallery and dropped
    from the query (a distractor query has no true match) with a warning.
    """
    parts: dict[str, list[Record]] = {}
    for part, sub in folders.items():
        folder = require_dir(root / sub, f"the {part} images of {name} ({expected})")
        items = parse_folder(folder, parse, expected)
        junk = sum(pid == -1 for _, pid, _ in items)
        items = [t for t in items if t[1] != -1]
        if junk:
            logger.info("%s: dropped %d junk images (pid -1)", folder, junk)
        if distractors and part == "query":
            dis = [t[0].name for t in items if t[1] == 0]
            if dis:
                logger.warning(
                    "%s: dropped %d distractor images (pid 0) from the query: %s",
                    folder,
                    len(dis),
                    ", ".join(dis[:SHOW_FIRST]),
                )
            items = [t for t in items if t[1] != 0]
        parts[part] = require_nonempty(make_records(items), part, folder, f"images named {expected}")
    return Split(
        name=name, train=parts["train"], query=parts["query"], gallery=parts["gallery"], protocol="reid"
    )


def read_csv_rows(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header; raise naming the file when a required column is missing."""
    require_file(path, "a CSV file with a header row")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: byte {e.start} is not UTF-8; save the CSV as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise DatasetError(f"{path}: no data rows; expected one row per image")
    return rows


def parse_int(value: str, field: str, where: str) -> int:
    """int(value) or a DatasetError naming the field and the location."""
    try:
        return int(value)
    except ValueError:
        raise DatasetError(f"{where}: field '{field}' is {value!r}; expected an integer") from None


def split_classes(
    records: list[Record], train_classes: int | None, name: str, source: Path
) -> tuple[list[Record], list[Record]]:
    """Class-disjoint split: the first `train_classes` classes (in sorted pid order) train, the rest test;
    default half of the classes present."""
    classes = sorted({r.pid for r in records})
    n = len(classes)
    if n < 2:
        raise DatasetError(f"{source}: {n} class(es) found; a class-disjoint split needs at least 2")
    k = n // 2 if train_classes is None else train_classes
    if not 0 < k < n:
        raise DatasetError(f"{name}: train_classes={k} but {n} classes are present; expected 1..{n - 1}")
    train_set = set(classes[:k])
    return [r for r in records if r.pid in train_set], [r for r in records if r.pid not in train_set]


def fine_grained_split(name: str, train: list[Record], test: list[Record]) -> Split:
    """Fine-grained protocol: query = the test records, gallery = a separate list with the same content."""
    return Split(name=name, train=train, query=list(test), gallery=list(test), protocol="fine_grained")


def natural_key(s: str) -> list[int | str]:
    """Sort key that orders embedded numbers numerically ('2' before '10')."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]
