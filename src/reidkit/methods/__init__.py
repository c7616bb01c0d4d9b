"""The method table: `method.name` -> the method's config class (its settings and their only defaults) and its
build function `build(config, model: ModelConfig, inputs: BuildInputs) -> Method`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reidkit.methods import cluster_contrast, ctl, frpt, textreid
from reidkit.methods.base import BuildInputs, Method


@dataclass(frozen=True)
class MethodEntry:
    """One row of METHODS."""

    config: type
    build: Callable[[Any, Any, BuildInputs], Method]
    summary: str


METHODS: dict[str, MethodEntry] = {
    "ctl": MethodEntry(ctl.CTLConfig, ctl.build, "supervised BNNeck baseline + Centroid Triplet Loss"),
    "cluster_contrast": MethodEntry(
        cluster_contrast.ClusterContrastConfig,
        cluster_contrast.build,
        "unsupervised: DBSCAN pseudo-labels + cluster memory (+ ISE)",
    ),
    "textreid": MethodEntry(textreid.TextReIDConfig, textreid.build, "text-based person search (CM-MoCo)"),
    "frpt": MethodEntry(frpt.FRPTConfig, frpt.build, "fine-grained retrieval prompt tuning, frozen backbone"),
}

__all__ = ["METHODS", "BuildInputs", "Method", "MethodEntry"]
