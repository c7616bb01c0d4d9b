"""Paths in recipes: relative `data.root` / `model.weights` resolve against the recipe (its repository when it
lives in a `configs/` folder); command-line paths are made absolute, so a run's config.yaml works anywhere."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

PATH_KEYS = (("data", "root"), ("model", "weights"))  # the config values that name files or folders


def recipe_relative(data: dict[str, Any], recipe: Path) -> dict[str, Any]:
    """Relative `data.root` / `model.weights` in a recipe file, resolved against the repository root when the
    recipe lives in a `configs/` folder (the recipes here), else against the recipe's own folder: the same
    recipe works from any current directory. A path found only relative to the current directory (configs
    written by earlier versions) is taken from there."""
    base = next((p.parent for p in recipe.resolve().parents if p.name == "configs"), recipe.resolve().parent)
    out = copy.deepcopy(data)
    for section, key in PATH_KEYS:
        value = out.get(section, {}).get(key) if isinstance(out.get(section), dict) else None
        if _relative_path(value):
            here = base / value
            out[section][key] = str(
                Path(value).absolute() if not here.exists() and Path(value).exists() else here
            )
    return out


def _relative_path(value: Any) -> bool:
    """A non-empty relative path (not null, not the `imagenet` keyword)."""
    return (
        isinstance(value, str)
        and value not in ("", "imagenet")
        and not Path(value).expanduser().is_absolute()
    )


def absolute_overrides(overrides: list[str]) -> list[str]:
    """Command-line `data.root=` / `model.weights=` relative to the current directory, made absolute: the run
    folder's config.yaml then works from anywhere."""
    keys = {f"{s}.{k}" for s, k in PATH_KEYS}
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        if key.strip() in keys and value not in ("null", "~", "None") and _relative_path(value):
            o = f"{key}={Path(value).expanduser().absolute()}"
        out.append(o)
    return out
