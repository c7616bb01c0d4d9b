"""reidkit: re-identification and retrieval with limited data.

The small Python API (loaded on first use, so `import reidkit` stays light):
`device`, `load_config`, `train`, `load_run`, `image_records`, `embed_folder`, `build_index`, `open_index`,
`search`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "device": ("reidkit.utils", "resolve_device"),
    "load_config": ("reidkit.config", "load_config"),
    "train": ("reidkit.app.train", "train"),
    "load_run": ("reidkit.app.deploy", "load_run"),
    "image_records": ("reidkit.data.readers", "image_records"),
    "embed_folder": ("reidkit.app.deploy", "embed_folder"),
    "build_index": ("reidkit.app.deploy", "build_index"),
    "open_index": ("reidkit.app.deploy", "open_index"),
    "search": ("reidkit.app.deploy", "search"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'reidkit' has no attribute {name!r}")
    module, attr = _API[name]
    return getattr(importlib.import_module(module), attr)
