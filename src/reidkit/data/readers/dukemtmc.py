"""DukeMTMC-reID reader.

Layout (`root` is this folder or holds it as its only sub-folder, e.g. `DukeMTMC-reID/`)::

    root/bounding_box_train/0001_c2_f0046182.jpg   train
    root/query/0005_c2_f0046985.jpg                 query
    root/bounding_box_test/0002_c1_f0044158.jpg     gallery

Names are `<pid>_c<camera>_f<frame>.jpg`; cameras c1..c8 become camid 0..7. There are no junk or
distractor ids in DukeMTMC-reID; a pid -1 would be dropped like Market's junk.
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._common import find_root, parse_market_name, read_market_style
from reidkit.types import Split

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
EXPECTED = "'<pid>_c<camera>_f<frame>.jpg' (e.g. 0001_c2_f0046182.jpg)"


def read_dukemtmc(root: str | Path) -> Split:
    """Read a DukeMTMC-reID tree into train/query/gallery records."""
    base = find_root(
        root, FOLDERS.values(), "DukeMTMC-reID folders bounding_box_train, query, bounding_box_test"
    )
    return read_market_style(base, "dukemtmc", FOLDERS, parse_market_name, EXPECTED)
