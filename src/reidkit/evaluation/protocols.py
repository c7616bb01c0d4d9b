"""Test-split metrics by the split's protocol, over features: reid (per image, centroids, camera-aware
centroids, re-ranking), fine_grained (Recall@K + mAP; the test set is query and gallery), text (text->image
and image->text)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reidkit.evaluation.evaluate import evaluate
from reidkit.evaluation.metrics import resolve_camera_rule
from reidkit.types import Features, Record, Split

FeaturesOf = Callable[[Sequence[Record]], Features]


def split_metrics(
    split: Split,
    image_features: FeaturesOf,
    *,
    text_features: FeaturesOf | None = None,
    centroids: bool = True,
    rerank: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """{protocol row: metrics} of a split; `rerank` (evaluate's re-ranking options) adds re-ranked rows."""
    if split.protocol == "fine_grained":
        q = image_features(split.query)  # the test set is query and gallery: Recall@K (FINE_GRAINED_KS) + mAP
        return {"fine_grained": evaluate(q, q, protocol="fine_grained").as_dict()}
    if split.protocol == "text":
        if text_features is None:
            raise ValueError(f"the text split {split.name} needs a method with a text stream")
        return text_metrics(text_features(split.query), image_features(split.gallery), rerank=rerank)
    q, g = image_features(split.query), image_features(split.gallery)
    out = {"image": evaluate(q, g).as_dict()}
    if centroids:
        out["centroid"] = evaluate(q, g, centroids=True).as_dict()
        out["centroid_camera_aware"] = evaluate(q, g, centroids="camera").as_dict()
        if resolve_camera_rule(q.camids, g.camids):  # cameras known: centroids-reid's definition too
            out["centroid_camera_aware_reference"] = evaluate(
                q, g, centroids="camera_aware_reference"
            ).as_dict()
    if rerank is not None:
        out["image_rerank"] = evaluate(q, g, rerank=rerank).as_dict()
    return out


def text_metrics(
    captions: Features, images: Features, *, rerank: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Text->image R@1/5/10, mAP, mINP over the de-duplicated image gallery, and image->text."""
    out = {"text_to_image": evaluate(captions, images, protocol="text").as_dict()}
    if rerank is not None:
        out["text_to_image_rerank"] = evaluate(captions, images, protocol="text", rerank=rerank).as_dict()
    # image -> text: captions are the gallery; no camera rule (a caption carries its image's camera)
    gi = dataclasses.replace(images, camids=np.full_like(images.camids, -1))
    qt = dataclasses.replace(captions, camids=np.full_like(captions.camids, -1))
    out["image_to_text"] = evaluate(gi, qt).as_dict()
    return out
