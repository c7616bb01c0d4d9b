"""Caption word tokens (lower-cased, punctuation dropped, as in CUHK-PEDES); torch-free."""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; punctuation splits words and is dropped (hyphenated words kept)."""
    return _TOKEN_RE.findall(text.lower())
