"""The images of one identity (which cameras, how many shots, views, renders, two captions each) and the
query/gallery split of a test identity, both deterministic from the seed and the pid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from reidkit.data.synthetic.attributes import PersonAttributes
from reidkit.data.synthetic.cameras import CameraStyle
from reidkit.data.synthetic.captions import NUM_TEMPLATES, caption
from reidkit.data.synthetic.config import _STREAM_IMAGES, VIEWS, SyntheticConfig
from reidkit.data.synthetic.render import render_person


@dataclass
class _Image:
    pid: int
    cam: int
    frame: int
    image: Image.Image
    captions: list[str]

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_c{self.cam}s1_{self.frame:06d}_00.jpg"


def _render_identity(
    pid: int, attrs: PersonAttributes, cams: list[CameraStyle], c: SyntheticConfig
) -> list[_Image]:
    """All images of one identity; depends only on (seed, pid, attrs, camera styles, config ranges)."""
    rng = np.random.default_rng([c.seed, _STREAM_IMAGES, pid])
    k = int(rng.integers(c.cameras_per_id[0], c.cameras_per_id[1] + 1))
    chosen = sorted(int(x) + 1 for x in rng.choice(c.num_cameras, size=k, replace=False))
    out: list[_Image] = []
    frame = 0
    for cam in chosen:
        style = cams[cam - 1]
        for _ in range(int(rng.integers(c.images_per_id_per_camera[0], c.images_per_id_per_camera[1] + 1))):
            frame += 1
            view = VIEWS[int(rng.choice(len(VIEWS), p=style.view_probs))]
            image = render_person(attrs, style, view, rng, size=(c.width, c.height))
            t1, t2 = (int(t) for t in rng.choice(NUM_TEMPLATES, size=2, replace=False))
            caps = [caption(attrs, view, rng, template=t1), caption(attrs, view, rng, template=t2)]
            out.append(_Image(pid, cam, frame, image, caps))
    return out


def split_query(images: list[_Image], rng: np.random.Generator) -> tuple[list[_Image], list[_Image]]:
    """At most one query per camera, kept only if the gallery still holds this pid from another camera."""
    by_cam: dict[int, list[_Image]] = {}
    for im in images:
        by_cam.setdefault(im.cam, []).append(im)
    left = {cam: len(ims) for cam, ims in by_cam.items()}  # gallery images per camera
    queries: dict[int, _Image] = {}
    for cam in [list(by_cam)[int(i)] for i in rng.permutation(len(by_cam))]:
        left[cam] -= 1
        if all(any(n > 0 for c2, n in left.items() if c2 != qc) for qc in [*queries, cam]):
            queries[cam] = by_cam[cam][int(rng.integers(len(by_cam[cam])))]
        else:
            left[cam] += 1
    chosen = {id(q) for q in queries.values()}
    query = sorted(queries.values(), key=lambda im: im.frame)
    return query, [im for im in images if id(im) not in chosen]
