"""CUHK-PEDES (text-based person search) reader; also reads the synthetic dataset's `reid_raw.json`.

Layout (`root` holds the annotation file, or its only sub-folder does)::

    root/reid_raw.json (or caption_all.json)   JSON list, one object per image:
        {"split": "train"|"val"|"test", "id": 11012, "file_path": "CUHK01/0368001.png",
         "captions": ["A person with ..."], "processed_tokens": [["a", "person", ...], ...],
         "camid": 1}                            (processed_tokens and camid optional)
    root/imgs/<file_path>                       the images (or root/<file_path> when there is no imgs/)

Captions: `captions`, plus `processed_tokens[k]` joined by spaces for every k beyond the raw captions
(some copies keep only the first raw caption). Camera: `camid` field (1-based, -> 0-based), else a
Market-style `_c<camera>` in the file name, else -1. `train_split` / `test_split` pick the splits
(the CUHK01 subset in ../shared/data has only val and test: train on val).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reidkit.data.readers._common import parse_market_name
from reidkit.data.readers._text import build_text_split, images_root, load_json_list, locate, plain_captions
from reidkit.types import Split

ANNOTATIONS = ["reid_raw.json", "caption_all.json"]


def pedes_captions(entry: dict[str, Any]) -> list[str] | str:
    """Raw captions, then each extra tokenised caption (beyond len(captions)) joined by spaces."""
    caps = plain_captions(entry)
    if isinstance(caps, str):
        return caps
    n_raw = len(entry["captions"])
    tokens = entry.get("processed_tokens")
    if tokens is not None:
        if not isinstance(tokens, list) or not all(isinstance(t, list) for t in tokens):
            return "'processed_tokens' is not a list of token lists"
        for t in tokens[n_raw:]:
            text = " ".join(str(w) for w in t).strip()
            if text:
                caps.append(text)
    return caps


def pedes_camera(entry: dict[str, Any], path: Path) -> int | str:
    """`camid` field (1-based) -> 0-based; else Market-style name; else -1."""
    cam = entry.get("camid")
    if cam is not None:
        if not isinstance(cam, int) or isinstance(cam, bool) or cam < 1:
            return f"'camid' is {cam!r}, expected an integer >= 1 (cameras are 1-based in the file)"
        return cam - 1
    got = parse_market_name(path.stem)
    return got[1] if isinstance(got, tuple) else -1


def read_cuhkpedes(root: str | Path, train_split: str = "train", test_split: str = "test") -> Split:
    """Read CUHK-PEDES annotations: one record per caption (train, query), one per test image (gallery)."""
    ann = locate(root, ANNOTATIONS, "CUHK-PEDES reid_raw.json or caption_all.json with imgs/")
    return build_text_split(
        "cuhkpedes",
        ann,
        load_json_list(ann),
        path_key="file_path",
        image_root=images_root(ann.parent),
        train_split=train_split,
        test_split=test_split,
        captions=pedes_captions,
        camera=pedes_camera,
    )
