"""Writes the synthetic set to disk in the Market-1501 layout, and keeps generated sets in a cache."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reidkit.data.synthetic.attributes import sample_attributes, sample_identities
from reidkit.data.synthetic.cameras import make_cameras
from reidkit.data.synthetic.config import (
    _STREAM_DISTRACTOR,
    _STREAM_SPLIT,
    GENERATOR_VERSION,
    VIEWS,
    SyntheticConfig,
    config_hash,
)
from reidkit.data.synthetic.images import _Image, _render_identity, split_query
from reidkit.data.synthetic.render import render_person
from reidkit.data.tokens import tokenize

logger = logging.getLogger(__name__)

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MANIFEST = (
    "manifest.json"  # written last: its presence (with matching config and counts) marks a complete set
)
_JPEG_QUALITY = 92


def _save(image: Image.Image, path: Path) -> None:
    image.save(path, format="JPEG", quality=_JPEG_QUALITY)


def _write_into(root: Path, c: SyntheticConfig) -> dict[str, Any]:
    """Generate the whole set into the (empty, temporary) folder `root`; returns the manifest."""
    for folder in FOLDERS.values():
        (root / folder).mkdir()
    cams = make_cameras(c.num_cameras, c.seed)
    identities = sample_identities(c.num_ids, c.seed)
    num_train = c.num_ids // 2
    entries: list[dict[str, Any]] = []
    counts = dict.fromkeys(FOLDERS.values(), 0)
    gallery_real = 0

    def emit(im: _Image, folder: str, split: str) -> None:
        _save(im.image, root / folder / im.name)
        counts[folder] += 1
        entries.append(
            {
                "split": split,
                "id": im.pid,
                "file_path": f"{folder}/{im.name}",
                "captions": im.captions,
                "processed_tokens": [tokenize(t) for t in im.captions],
                "camid": im.cam,
            }
        )

    for pid, attrs in enumerate(identities, start=1):
        images = _render_identity(pid, attrs, cams, c)
        if pid <= num_train:
            for im in images:
                emit(im, FOLDERS["train"], "train")
            continue
        query, gallery = split_query(images, np.random.default_rng([c.seed, _STREAM_SPLIT, pid]))
        for im in query:
            emit(im, FOLDERS["query"], "test")
        for im in gallery:
            emit(im, FOLDERS["gallery"], "test")
        gallery_real += len(gallery)

    num_distractors = math.ceil(c.distractor_fraction * gallery_real)
    taken = {a.key() for a in identities}
    for k in range(1, num_distractors + 1):
        rng = np.random.default_rng([c.seed, _STREAM_DISTRACTOR, k])
        attrs = sample_attributes(rng)
        while attrs.key() in taken:
            attrs = sample_attributes(rng)
        style = cams[int(rng.integers(c.num_cameras))]
        view = VIEWS[int(rng.choice(len(VIEWS), p=style.view_probs))]
        im = render_person(attrs, style, view, rng, size=(c.width, c.height))
        _save(im, root / FOLDERS["gallery"] / _Image(0, style.cam, k, im, []).name)
        counts[FOLDERS["gallery"]] += 1

    reid_raw = json.dumps(entries, indent=1).encode()
    attributes = json.dumps(
        {f"{pid:04d}": a.as_dict() for pid, a in enumerate(identities, 1)}, indent=1
    ).encode()
    (root / "reid_raw.json").write_bytes(reid_raw)
    (root / "attributes.json").write_bytes(attributes)
    (root / "SYNTHETIC.md").write_text(_readme(c, counts, num_distractors))
    return {
        "generator_version": GENERATOR_VERSION,
        "config": asdict(c),
        "counts": counts,
        "num_distractors": num_distractors,
        "sha256": {
            "reid_raw.json": hashlib.sha256(reid_raw).hexdigest(),
            "attributes.json": hashlib.sha256(attributes).hexdigest(),
        },
    }


def _readme(c: SyntheticConfig, counts: dict[str, int], num_distractors: int) -> str:
    return (
        "# reidkit synthetic pedestrians\n\n"
        "Rendered pedestrians (body shape, skin, hair, top/bottom colour and type, pattern, shoes, bag, hat) "
        f"seen by {c.num_cameras} cameras that differ in background, lighting, preferred viewpoint, scale, "
        "blur and occlusion, written by `reidkit.data.synthetic` (generator version "
        f"{GENERATOR_VERSION}) in the Market-1501 layout with a CUHK-PEDES-style `reid_raw.json` "
        "(two captions per image, built from the attributes visible in that view) and `attributes.json` "
        f"(per identity). {c.num_ids} identities (pids 1..{c.num_ids // 2} train, the rest test), "
        f"{counts['bounding_box_train']} train, {counts['query']} query and {counts['bounding_box_test']} "
        f"gallery images ({num_distractors} of them pid-0 distractors), {c.width}x{c.height} pixels. "
        f"Config: {json.dumps(asdict(c), sort_keys=True)}; seed {c.seed}. The same config always gives the "
        "same files. Synthetic data for tests and quick starts, not a benchmark.\n"
    )


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and overwrite and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old)
        return
    if out.exists():
        out.rmdir()  # empty (checked by the caller); a non-empty one makes this raise OSError
    os.rename(tmp, out)


def write_synthetic(
    out: Path, config: SyntheticConfig = SyntheticConfig(), *, overwrite: bool = False
) -> Path:
    """Generate the set into `out` (written to a temp folder beside it, then renamed into place).
    Raises FileExistsError when `out` is a non-empty folder and `overwrite` is False."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; expected a folder for the synthetic set")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder is not empty; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        manifest = _write_into(tmp, config)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))  # last: marks complete
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote synthetic set to %s: %s", out, manifest["counts"])
    return out


def is_complete(path: Path, config: SyntheticConfig) -> bool:
    """True when `path` holds a finished set for `config`: manifest present, same config, counts match."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return False
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError:
        logger.warning("%s: unreadable manifest, treating the set as incomplete", mpath)
        return False
    if manifest.get("generator_version") != GENERATOR_VERSION or manifest.get("config") != json.loads(
        json.dumps(asdict(config))
    ):
        return False
    for folder, n in manifest.get("counts", {}).items():
        if not (Path(path) / folder).is_dir() or len(os.listdir(Path(path) / folder)) != n:
            return False
    return all((Path(path) / f).is_file() for f in ("reid_raw.json", "attributes.json"))


def default_cache_dir() -> Path:
    """$REIDKIT_CACHE, else ~/.cache/reidkit."""
    return Path(os.environ.get("REIDKIT_CACHE") or "~/.cache/reidkit").expanduser()


def ensure_synthetic(cache_dir: Path | None = None, config: SyntheticConfig = SyntheticConfig()) -> Path:
    """The set for `config` under `cache_dir` (default `default_cache_dir()`), generated once and reused;
    a folder without a valid manifest (e.g. left by an older version) is regenerated."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / f"synthetic-{config_hash(config)[:16]}"
    if is_complete(target, config):
        logger.debug("reusing synthetic set %s", target)
        return target
    logger.info("generating synthetic set into %s", target)
    try:
        return write_synthetic(target, config, overwrite=target.exists())
    except OSError:
        if is_complete(target, config):  # another process finished first
            return target
        raise
