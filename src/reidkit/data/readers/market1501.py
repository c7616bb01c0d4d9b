"""Market-1501 reader (also reads the built-in synthetic dataset, which uses this layout).

Layout (`root` is this folder or holds it as its only sub-folder, e.g. `Market-1501-v15.09.15/`)::

    root/bounding_box_train/0002_c1s1_000451_03.jpg   train
    root/query/0001_c1s1_001051_00.jpg                 query
    root/bounding_box_test/0000_c1s1_000151_01.jpg     gallery

Names are `<pid>_c<camera>s<sequence>_<frame>_<box>.jpg`; only the `<pid>_c<camera>` prefix is parsed.
Cameras c1..c6 become camid 0..5. pid -1 (junk boxes) is dropped everywhere; pid 0 (distractors) is kept
in the gallery. Other files (Thumbs.db, gt_bbox/, gt_query/) are ignored.
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._common import find_root, parse_market_name, read_market_style
from reidkit.types import Split

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
EXPECTED = "'<pid>_c<camera>s<seq>_<frame>_<box>.jpg' (e.g. 0002_c1s1_000451_03.jpg)"


def read_market1501(root: str | Path) -> Split:
    """Read a Market-1501 tree into train/query/gallery records (junk dropped, distractors kept)."""
    base = find_root(
        root, FOLDERS.values(), "Market-1501 folders bounding_box_train, query, bounding_box_test"
    )
    return read_market_style(base, "market1501", FOLDERS, parse_market_name, EXPECTED, distractors=True)
