"""The built-in synthetic dataset: layout, counts, protocol, determinism, captions, caching, difficulty."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from reidkit.data import synthetic as syn
from reidkit.data.synthetic import (
    NUM_TEMPLATES,
    VIEWS,
    PersonAttributes,
    SyntheticConfig,
    caption,
    ensure_synthetic,
    is_complete,
    make_cameras,
    render_person,
    sample_identities,
    split_query,
    visible_attributes,
    write_synthetic,
)
from reidkit.data.synthetic import write as syn_write

# Written independently of the module's own pattern.
NAME = re.compile(r"^(\d{4})_c([1-9])s1_(\d{6})_00\.jpg$")
SMALL = SyntheticConfig(num_ids=12, seed=3)
GENDER_WORDS = {
    "man": ("man", "guy", "male", "gentleman", "he", "his"),
    "woman": ("woman", "lady", "female", "girl", "she", "her"),
}


def _parse(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for f in sorted(folder.iterdir()):
        m = NAME.match(f.name)
        assert m, f"{f.name} does not follow the Market naming"
        out.append((f.name, int(m[1]), int(m[2])))
    return out


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("syn") / "set", SMALL)


def test_layout_names_and_images(small_set: Path) -> None:
    train = _parse(small_set / "bounding_box_train")
    query = _parse(small_set / "query")
    gallery = _parse(small_set / "bounding_box_test")
    names = [n for n, _, _ in train + query + gallery]
    assert len(names) == len(set(names)), "file names must be unique across folders"
    assert {p for _, p, _ in train} == set(range(1, 7))  # first half of the ids
    assert {p for _, p, _ in query} <= set(range(7, 13))
    assert {p for _, p, _ in gallery} - {0} == set(range(7, 13))
    assert all(1 <= c <= SMALL.num_cameras for _, _, c in train + query + gallery)
    for folder, name in (("bounding_box_train", train[0][0]), ("bounding_box_test", gallery[-1][0])):
        with Image.open(small_set / folder / name) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (SMALL.width, SMALL.height))
    text = (small_set / "SYNTHETIC.md").read_text()
    assert "seed 3" in text and '"num_ids": 12' in text


def test_counts_json_and_attributes(small_set: Path) -> None:
    files = {
        f"{folder}/{n}": (p, c)
        for folder in ("bounding_box_train", "query", "bounding_box_test")
        for n, p, c in _parse(small_set / folder)
    }
    real = {k: v for k, v in files.items() if v[0] != 0}
    entries = json.loads((small_set / "reid_raw.json").read_text())
    assert len(entries) == len(real) and {e["file_path"] for e in entries} == set(real)
    for e in entries:
        pid, cam = real[e["file_path"]]
        assert (e["id"], e["camid"]) == (pid, cam)
        assert e["split"] == ("train" if e["file_path"].startswith("bounding_box_train/") else "test")
        assert len(e["captions"]) == 2
        naive = [re.sub(r"[.,]", "", c.lower()).split() for c in e["captions"]]
        assert e["processed_tokens"] == naive

    per_id_cam = Counter(real.values())
    cams_per_id = Counter(p for p, _ in per_id_cam)
    assert set(cams_per_id) == set(range(1, SMALL.num_ids + 1))
    lo, hi = SMALL.cameras_per_id
    assert all(lo <= n <= hi for n in cams_per_id.values())
    lo, hi = SMALL.images_per_id_per_camera
    assert all(lo <= n <= hi for n in per_id_cam.values())

    real_gallery = sum(k.startswith("bounding_box_test/") for k in real)
    distractors = [k for k, (p, _) in files.items() if p == 0]
    assert all(k.startswith("bounding_box_test/0000_c") for k in distractors)
    assert len(distractors) == math.ceil(SMALL.distractor_fraction * real_gallery) >= 1

    attrs = json.loads((small_set / "attributes.json").read_text())
    expected = {f"{i:04d}": asdict(a) for i, a in enumerate(sample_identities(SMALL.num_ids, SMALL.seed), 1)}
    assert attrs == expected


def test_every_query_has_a_cross_camera_gallery_match(small_set: Path) -> None:
    query = _parse(small_set / "query")
    gallery = _parse(small_set / "bounding_box_test")
    assert query, "the small set should have queries"
    assert len({(p, c) for _, p, c in query}) == len(query), "at most one query per (pid, camera)"
    for name, pid, cam in query:
        assert any(p == pid and c != cam for _, p, c in gallery), f"{name} has no cross-camera match"


@pytest.mark.parametrize("per_cam", [[1, 1], [1], [3], [1, 1, 1], [2, 1], [1, 1, 1, 1], [3, 1, 2, 1]])
def test_split_query_keeps_only_valid_queries(per_cam: list[int]) -> None:
    images = [SimpleNamespace(cam=c + 1, frame=f) for c, n in enumerate(per_cam) for f in range(n)]
    for seed in range(10):
        query, gallery = split_query(images, np.random.default_rng(seed))  # type: ignore[arg-type]
        assert len(query) + len(gallery) == len(images)
        assert len({q.cam for q in query}) == len(query)
        for q in query:
            assert any(g.cam != q.cam for g in gallery)
        # With two or more cameras at least one query is always possible (the rest of the cameras remain).
        assert (len(query) >= 1) == (len(per_cam) >= 2)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    cfg = SyntheticConfig(num_ids=6, seed=11)
    a = _hashes(write_synthetic(tmp_path / "a", cfg))
    b = _hashes(write_synthetic(tmp_path / "b", cfg))
    assert a == b and len(a) > 10
    c = _hashes(write_synthetic(tmp_path / "c", SyntheticConfig(num_ids=6, seed=12)))
    assert a["reid_raw.json"] != c["reid_raw.json"]


def test_earlier_ids_do_not_change_with_num_ids(tmp_path: Path) -> None:
    assert sample_identities(8, 5)[:5] == sample_identities(5, 5)
    small = write_synthetic(tmp_path / "four", SyntheticConfig(num_ids=4, seed=5))
    large = write_synthetic(tmp_path / "six", SyntheticConfig(num_ids=6, seed=5))
    first = sorted((small / "bounding_box_train").iterdir())  # pids 1, 2: train in both sets
    assert first
    for f in first:
        assert f.read_bytes() == (large / "bounding_box_train" / f.name).read_bytes()


def _words(text: str, *words: str) -> bool:
    return re.search(r"\b(" + "|".join(words) + r")\b", text.lower()) is not None


def test_captions_mention_only_visible_attributes() -> None:
    people = sample_identities(300, 0)
    rng = np.random.default_rng(0)
    seen = Counter()
    for a in people:
        for view in VIEWS:
            for t in range(NUM_TEMPLATES):
                text = caption(a, view, rng, template=t)
                logo = a.top_pattern == "logo" and view == "front"
                assert _words(text, "logo", "print", "printed", "graphic") == logo, (a, view, text)
                pack = a.bag == "backpack" and view != "front"
                assert _words(text, "backpack", "rucksack") == pack, (a, view, text)
                if a.bag == "backpack" and view == "front":  # only the straps show: a generic bag, no colour
                    bag_sentence = [s for s in text.split(". ") if _words(s, "bag")]
                    assert len(bag_sentence) == 1 and not _words(bag_sentence[0], *syn.RGB, "gray"), text
                    seen["front backpack"] += 1
                if a.bag == "none":
                    assert not _words(text, "bag", "handbag", "purse", "backpack", "rucksack"), text
                if a.hat != "none" and a.hair_style in ("short", "bald"):  # hidden under the hat
                    assert not _words(text, "hair", "haircut", "bald", "shaved"), (a, view, text)
                    seen["hidden hair"] += 1
                tail = a.hair_style == "ponytail" and view != "front"
                assert _words(text, "ponytail") == tail, (a, view, text)
                assert _words(text, "cap", "beanie", "hat") == (a.hat != "none"), (a, view, text)
                top = ("grey", "gray") if a.top_color == "grey" else (a.top_color,)
                assert _words(text, *top), (a, view, text)
                own, other = GENDER_WORDS[a.gender], GENDER_WORDS["woman" if a.gender == "man" else "man"]
                assert _words(text, *own) and not _words(text, *other), (a, view, text)
    assert seen["front backpack"] > 0 and seen["hidden hair"] > 0  # the rules were exercised


def test_visible_attributes_rules() -> None:
    base = sample_identities(1, 0)[0]
    a = PersonAttributes(**{**asdict(base), "top_pattern": "logo", "pattern_color": "red", "bag": "backpack",
                            "bag_color": "blue", "hat": "none", "hat_color": "none"})  # fmt: skip
    assert visible_attributes(a, "front")["top_pattern"] == "logo"
    assert visible_attributes(a, "back")["top_pattern"] is None
    assert visible_attributes(a, "side")["pattern_color"] is None
    assert (visible_attributes(a, "front")["bag"], visible_attributes(a, "front")["bag_color"]) == (
        "bag",
        None,
    )
    assert (visible_attributes(a, "side")["bag"], visible_attributes(a, "side")["bag_color"]) == (
        "backpack",
        "blue",
    )
    with pytest.raises(ValueError, match="view"):
        visible_attributes(a, "top")


def test_two_captions_differ(small_set: Path) -> None:
    for e in json.loads((small_set / "reid_raw.json").read_text()):
        assert e["captions"][0] != e["captions"][1]
    a = sample_identities(1, 1)[0]
    texts = {caption(a, "back", np.random.default_rng(0), template=t) for t in range(NUM_TEMPLATES)}
    assert len(texts) == NUM_TEMPLATES


def test_identities_share_attributes_yet_are_unique() -> None:
    ids = sample_identities(20, 0)
    assert len({a.key() for a in ids}) == 20
    for name in ("top_color", "bottom_color", "shoe_color", "top_type", "gender"):
        assert max(Counter(getattr(a, name) for a in ids).values()) >= 2, name
    many = sample_identities(500, 0)
    assert len({a.key() for a in many}) == 500
    # Small skewed palettes: the commonest top colour is worn by a good share of everybody.
    assert max(Counter(a.top_color for a in many).values()) >= 50


def test_logo_is_drawn_on_the_front_only() -> None:
    base = sample_identities(1, 2)[0]
    plain = PersonAttributes(**{**asdict(base), "top_pattern": "plain", "pattern_color": "none"})
    logo = PersonAttributes(**{**asdict(base), "top_pattern": "logo", "pattern_color": "red"})
    for view in VIEWS:
        pose = syn._sample_pose(view, np.random.default_rng(0))
        a = np.asarray(syn._draw_person(plain, view, pose, 128, 256))
        b = np.asarray(syn._draw_person(logo, view, pose, 128, 256))
        assert (not np.array_equal(a, b)) == (view == "front"), view


def test_render_person_size_and_reproducibility() -> None:
    a = sample_identities(3, 0)[2]
    cam = make_cameras(2, 0)[1]
    im1 = render_person(a, cam, "side", np.random.default_rng(4), size=(48, 96))
    im2 = render_person(a, cam, "side", np.random.default_rng(4), size=(48, 96))
    assert (im1.mode, im1.size) == ("RGB", (48, 96))
    assert np.array_equal(np.asarray(im1), np.asarray(im2))
    with pytest.raises(ValueError, match="view"):
        render_person(a, cam, "above", np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_ids": 1}, "num_ids"),
        ({"num_cameras": 10}, "num_cameras"),
        ({"cameras_per_id": (2, 5)}, "cameras_per_id"),
        ({"cameras_per_id": (0, 2)}, "cameras_per_id"),
        ({"images_per_id_per_camera": (3, 1)}, "images_per_id_per_camera"),
        ({"width": 8}, "width"),
        ({"seed": -1}, "seed"),
        ({"distractor_fraction": 1.5}, "distractor_fraction"),
    ],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**kwargs)


def test_config_accepts_lists_from_yaml() -> None:
    c = SyntheticConfig(num_ids=4, cameras_per_id=[2, 3])  # type: ignore[arg-type]
    assert c.cameras_per_id == (2, 3) and hash(c) == hash(SyntheticConfig(num_ids=4, cameras_per_id=(2, 3)))


def test_write_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        write_synthetic(out, SyntheticConfig(num_ids=2))
    write_synthetic(out, SyntheticConfig(num_ids=2), overwrite=True)
    assert not (out / "keep.txt").exists() and is_complete(out, SyntheticConfig(num_ids=2))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp or old folders left


def test_ensure_synthetic_writes_once_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = SyntheticConfig(num_ids=4, seed=1)
    path = ensure_synthetic(tmp_path / "cache", cfg)
    assert path.parent == tmp_path / "cache" and path.name.startswith("synthetic-")
    assert is_complete(path, cfg)

    def no_write(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a complete cached set must be reused, not rewritten")

    monkeypatch.setattr(syn_write, "write_synthetic", no_write)
    assert ensure_synthetic(tmp_path / "cache", cfg) == path
    monkeypatch.undo()
    other = ensure_synthetic(tmp_path / "cache", SyntheticConfig(num_ids=4, seed=2))
    assert other != path and not is_complete(other, cfg)
    monkeypatch.setenv("REIDKIT_CACHE", str(tmp_path / "env"))
    assert ensure_synthetic(None, cfg).parent == tmp_path / "env"


def test_interrupted_writes_are_not_taken_for_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = SyntheticConfig(num_ids=6, seed=4)
    cache = tmp_path / "cache"
    calls = {"n": 0}
    real_save = syn_write._save

    def failing_save(image: Image.Image, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("disk full (simulated)")
        real_save(image, path)

    monkeypatch.setattr(syn_write, "_save", failing_save)
    with pytest.raises(RuntimeError, match="simulated"):
        ensure_synthetic(cache, cfg)
    assert list(cache.iterdir()) == []  # the temp folder was removed, nothing half-done in place
    monkeypatch.undo()

    # A process killed mid-write leaves a temp folder beside the target: it is ignored.
    target = cache / f"synthetic-{syn.config_hash(cfg)[:16]}"
    stale = cache / f".{target.name}.tmp-killed"
    (stale / "query").mkdir(parents=True)
    (stale / "manifest.json").write_text("{}")
    # A target folder without a manifest (or with one that does not match) is regenerated.
    (target / "query").mkdir(parents=True)
    (target / "query" / "0001_c1s1_000001_00.jpg").write_bytes(b"partial")
    assert not is_complete(target, cfg)
    path = ensure_synthetic(cache, cfg)
    assert path == target and is_complete(path, cfg)
    stub = path / "query" / "0001_c1s1_000001_00.jpg"  # pid 1 is a train id: the stub must be gone
    assert not stub.exists()
    # A missing image makes the counts disagree with the manifest.
    next((path / "bounding_box_train").iterdir()).unlink()
    assert not is_complete(path, cfg)
    assert is_complete(ensure_synthetic(cache, cfg), cfg)


def _map_cross_camera(
    sim: np.ndarray, qp: np.ndarray, qc: np.ndarray, gp: np.ndarray, gc: np.ndarray
) -> float:
    """Naive Market-style mAP: same pid + same camera gallery entries are ignored for each query."""
    aps = []
    for i in range(sim.shape[0]):
        keep = ~((gp == qp[i]) & (gc == qc[i]))
        order = np.argsort(-sim[i][keep], kind="stable")
        match = (gp[keep] == qp[i])[order]
        if not match.any():
            continue
        hits = np.cumsum(match)
        aps.append(float((hits / np.arange(1, len(match) + 1))[match].mean()))
    return float(np.mean(aps))


def test_raw_pixels_do_not_solve_it(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "hard", SyntheticConfig(num_ids=40, seed=0))

    def load(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feats, pids, cams = [], [], []
        for name, p, c in _parse(root / folder):
            with Image.open(root / folder / name) as im:
                x = np.asarray(
                    im.convert("RGB").resize((16, 32), Image.Resampling.BILINEAR), dtype=np.float64
                )
            feats.append(x.ravel() / np.linalg.norm(x))  # [16*32*3]
            pids.append(p)
            cams.append(c)
        return np.stack(feats), np.array(pids), np.array(cams)

    q, qp, qc = load("query")  # [Q, D]
    g, gp, gc = load("bounding_box_test")  # [G, D]
    raw = _map_cross_camera(q @ g.T, qp, qc, gp, gc)
    rng = np.random.default_rng(0)
    chance = float(
        np.mean([_map_cross_camera(rng.random((len(q), len(g))), qp, qc, gp, gc) for _ in range(50)])
    )
    # Measured (seed 0): raw ~0.16, chance ~0.09.
    assert chance + 0.03 < raw < 0.6, (raw, chance)
