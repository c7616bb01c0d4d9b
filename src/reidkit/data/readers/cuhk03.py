"""CUHK03 reader: the new-protocol folder layout, or Market-style folders with a `labels.csv`.

Layout (a), CUHK03-NP (`root` holds `detected/` and/or `labeled/`, or one sub-folder that does)::

    root/detected/bounding_box_train/0001_c1_1.png      option variant="detected" (default) or "labeled"
    root/detected/query/...
    root/detected/bounding_box_test/...

  Names are Market-style `<pid>_c<camera>_...`; c1/c2 -> camid 0/1.

Layout (b), e.g. ../shared/data/cuhk03_detected (`root` holds the split folders directly)::

    root/bounding_box_train/0000_00.jpg   names PPPP_SS: pid, slot 00-09 (00-04 camera 1, 05-09 camera 2)
    root/query/...
    root/bounding_box_test/...
    root/labels.csv                        columns path,split,pid,camid[,slot]; camid 1/2 -> 0/1

  With `labels.csv` its labels are used and checked against the files and names; without it the names
  are parsed (either naming scheme).
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.readers._common import DatasetError, absolute, parse_market_name, require_dir
from reidkit.data.readers._labeled import SPLIT_FOLDERS, has_split_folders, read_labeled_folders
from reidkit.types import Split

VARIANTS = ("detected", "labeled")
SLOT_NAME = re.compile(r"^(\d+)_(\d{2})$")
EXPECTED = "'<pid>_c<camera>_<n>' (CUHK03-NP) or 'PPPP_SS' (pid, slot 00-09)"


def parse_cuhk03_name(stem: str) -> tuple[int, int] | str:
    """`0001_c1_1` -> (1, 0); `0012_07` -> (12, 1) (slots 00-04 are camera 1, 05-09 camera 2)."""
    m = SLOT_NAME.match(stem)
    if m is not None:
        slot = int(m.group(2))
        return (int(m.group(1)), 0 if slot < 5 else 1) if slot < 10 else f"slot {slot} is not 00-09"
    return parse_market_name(stem)


def read_cuhk03(root: str | Path, variant: str = "detected") -> Split:
    """Read CUHK03 (`variant` picks detected/labeled boxes in the new-protocol layout)."""
    if variant not in VARIANTS:
        raise DatasetError(f"cuhk03: variant={variant!r}; expected one of {', '.join(VARIANTS)}")
    base = require_dir(absolute(root), "a CUHK03 folder (detected/ and labeled/, or split folders)")
    candidates = [base / variant, base] + [c / variant for c in sorted(base.iterdir()) if c.is_dir()]
    for cand in candidates:
        if has_split_folders(cand):
            return read_labeled_folders(cand, f"cuhk03_{variant}", parse_cuhk03_name, EXPECTED)
    raise DatasetError(
        f"{base}: no CUHK03 split folders; expected {variant}/{{{','.join(SPLIT_FOLDERS.values())}}} "
        f"or {','.join(SPLIT_FOLDERS.values())} (+ labels.csv) directly in it"
    )
