"""VeRi-776 (vehicle re-identification) reader.

Layout (`root` is this folder or holds it as its only sub-folder, e.g. `VeRi/`)::

    root/image_train/0001_c001_00016450_0.jpg   train
    root/image_query/0002_c002_00030600_1.jpg   query
    root/image_test/0002_c003_00084280_0.jpg    gallery

Names are `<vehicle id>_c<camera>_<frame>_<n>.jpg`; cameras c001..c020 become camid 0..19. The list files
(`name_train.txt`, ...) and XML labels are not needed.
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._common import find_root, parse_market_name, read_market_style
from reidkit.types import Split

FOLDERS = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
EXPECTED = "'<vehicle id>_c<camera>_<frame>_<n>.jpg' (e.g. 0001_c001_00016450_0.jpg)"


def read_veri(root: str | Path) -> Split:
    """Read a VeRi-776 tree into train/query/gallery records."""
    base = find_root(root, FOLDERS.values(), "VeRi-776 folders image_train, image_query, image_test")
    return read_market_style(base, "veri", FOLDERS, parse_market_name, EXPECTED)
