"""GalleryIndex folder format and IndexBuilder: modes, round trips, corruption, append, resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from reidkit.index import (
    ExactIndex,
    GalleryIndex,
    IndexBuilder,
    IndexIntegrityError,
    ModelMismatchError,
    dataset_identity,
    describe_dir,
)
from reidkit.index import folder as store_mod
from reidkit.types import Features, Record

DIM = 12
SHA = "0123456789abcdef" * 4


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def make_gallery(n: int = 60, n_ids: int = 8, seed: int = 0) -> tuple[Features, list[Record]]:
    """Records with pids/cameras and features clustered by pid, in a shuffled record order."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, DIM))
    recs = [Record(f"/data/img_{i:03d}.jpg", pid=i % n_ids, camid=i % 3) for i in range(n)]
    feats = np.stack([centres[r.pid] + 0.5 * rng.standard_normal(DIM) for r in recs]).astype(np.float32)
    order = rng.permutation(n)  # features are not in record order: Features.index maps rows to records
    return (
        Features(
            feats=feats[order],
            pids=np.array([recs[i].pid for i in order]),
            camids=np.array([recs[i].camid for i in order]),
            index=order.astype(np.int64),
        ),
        recs,
    )


def subset(features: Features, rows: np.ndarray) -> Features:
    return Features(features.feats[rows], features.pids[rows], features.camids[rows], features.index[rows])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def naive_centroids(features: Features, records: list[Record]) -> dict[int, np.ndarray]:
    """pid -> mean of that identity's L2-normalised features, re-normalised, by an explicit loop."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for row in range(len(features)):
        pid = records[int(features.index[row])].pid
        f = features.feats[row].astype(np.float64)
        sums[pid] = sums.get(pid, np.zeros(DIM)) + f / np.sqrt(np.sum(f * f))
        counts[pid] = counts.get(pid, 0) + 1
    return {pid: unit(s / counts[pid]) for pid, s in sums.items()}


def test_instance_mode_matches_exact_search() -> None:
    features, recs = make_gallery()
    gi = GalleryIndex.build(features, recs, factory="Flat", model_sha256=SHA)
    assert len(gi) == 60 and gi.mode == "instance" and gi.dim == DIM
    # Entry ids follow the feature rows; each carries its record's metadata.
    for row in range(len(features)):
        rec = recs[int(features.index[row])]
        e = gi.entry(row)
        assert (e.path, e.pid, e.camid) == (rec.path, rec.pid, rec.camid)
    oracle = ExactIndex(DIM)
    oracle.add(features.feats, np.arange(60))
    queries = np.random.default_rng(9).standard_normal((5, DIM))
    np.testing.assert_array_equal(gi.search(queries, 7)[1], oracle.search(queries, 7)[1])
    hits = gi.query(queries[:1], 3)[0]
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.entry.id for h in hits] == oracle.search(queries[:1], 3)[1][0].tolist()


@pytest.mark.parametrize("factory", ["Exact", "Flat", "HNSW8"])
def test_centroid_mode_one_entry_per_identity_equal_to_naive_mean(factory: str) -> None:
    features, recs = make_gallery()
    gi = GalleryIndex.build(features, recs, mode="centroid", factory=factory)
    assert len(gi) == 8 and sorted(e.pid for e in gi.entries()) == list(range(8))
    naive = naive_centroids(features, recs)
    cents = gi.centroids()  # [P, D]
    for e in gi.entries():
        np.testing.assert_allclose(cents[e.id], naive[e.pid], atol=1e-6)
        assert sorted(e.members) == sorted(r.path for r in recs if r.pid == e.pid)
        assert e.path in e.members and e.camid == -1
        # The representative is the member closest to the centroid.
        member_rows = [i for i in range(len(features)) if recs[int(features.index[i])].pid == e.pid]
        sims = unit(features.feats[member_rows]) @ naive[e.pid]
        assert e.path == recs[int(features.index[member_rows[int(np.argmax(sims))]])].path
    # A search returns each identity at most once, ranked like a brute-force search over the naive centroids.
    queries = np.random.default_rng(1).standard_normal((4, DIM))
    scores, ids = gi.search(queries, 8)
    for q, s_row, id_row in zip(queries, scores, ids, strict=True):
        pids = [gi.entry(int(i)).pid for i in id_row]
        assert len(set(pids)) == 8
        want = sorted(naive, key=lambda p: -float(unit(q) @ naive[p]))
        assert pids == want
        np.testing.assert_allclose(s_row, [unit(q) @ naive[p] for p in want], atol=1e-5)


@pytest.mark.parametrize("mode", ["instance", "centroid"])
@pytest.mark.parametrize("factory", ["Exact", "Flat", "HNSW8", "IVF4,Flat"])
def test_save_load_round_trip(tmp_path: Path, mode: str, factory: str) -> None:
    features, recs = make_gallery()
    gi = GalleryIndex.build(features, recs, mode=mode, factory=factory, model_sha256=SHA)
    gi.save(tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"], "no temp folders left behind"
    files = sorted(p.name for p in (tmp_path / "idx").iterdir())
    index_file = "index.npz" if factory == "Exact" else "index.faiss"
    assert files == sorted([index_file, "manifest.json", "meta.sqlite"])
    loaded = GalleryIndex.load(tmp_path / "idx", expected_model_sha256=SHA, expected_dim=DIM)
    assert (loaded.mode, loaded.factory, loaded.model_sha256, len(loaded)) == (mode, gi.factory, SHA, len(gi))
    assert loaded.entries() == gi.entries()
    queries = np.random.default_rng(2).standard_normal((6, DIM))
    for a, b in zip(loaded.search(queries, 5), gi.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    manifest = describe_dir(tmp_path / "idx")
    assert manifest["count"] == len(gi) and manifest["embedder_dim"] == DIM and manifest["bytes_on_disk"] > 0


def flip_positions(size: int, every: bool) -> list[int]:
    return list(range(size)) if every else sorted({0, size - 1, *np.linspace(0, size - 1, 40).astype(int)})


@pytest.mark.parametrize("mode", ["instance", "centroid"])
def test_one_byte_flip_anywhere_is_detected(tmp_path: Path, mode: str) -> None:
    features, recs = make_gallery(n=30, n_ids=5)
    GalleryIndex.build(features, recs, mode=mode, factory="HNSW8", model_sha256=SHA).save(tmp_path / "idx")
    for path in sorted((tmp_path / "idx").iterdir()):
        original = path.read_bytes()
        # Every byte of the (small, hand-editable) manifest; 40+ spread positions of the binary files.
        for pos in flip_positions(len(original), every=path.name == "manifest.json"):
            for mask in (0x01, 0x80):
                damaged = bytearray(original)
                damaged[pos] ^= mask
                path.write_bytes(bytes(damaged))
                with pytest.raises(IndexIntegrityError, match=path.name):
                    GalleryIndex.load(tmp_path / "idx")
        path.write_bytes(original)
    assert len(GalleryIndex.load(tmp_path / "idx")) == (30 if mode == "instance" else 5)


def test_missing_or_truncated_files_are_detected(tmp_path: Path) -> None:
    features, recs = make_gallery()
    GalleryIndex.build(features, recs).save(tmp_path / "idx")
    sqlite = tmp_path / "idx" / "meta.sqlite"
    data = sqlite.read_bytes()
    sqlite.write_bytes(data[:-100])
    with pytest.raises(IndexIntegrityError, match="meta.sqlite: checksum mismatch"):
        GalleryIndex.load(tmp_path / "idx")
    sqlite.unlink()
    with pytest.raises(IndexIntegrityError, match="meta.sqlite: missing"):
        GalleryIndex.load(tmp_path / "idx")
    with pytest.raises(FileNotFoundError, match="not a gallery index"):
        GalleryIndex.load(tmp_path / "nowhere")


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    features, recs = make_gallery()
    GalleryIndex.build(features, recs).save(tmp_path / "idx")
    path = tmp_path / "idx" / "manifest.json"
    body = json.loads(path.read_text())
    del body["manifest_sha256"]
    body["format_version"] = 99  # a newer writer, with a self-consistent checksum
    body["manifest_sha256"] = hashlib.sha256(store_mod._render_manifest(body)).hexdigest()
    path.write_bytes(store_mod._render_manifest(body))
    with pytest.raises(IndexIntegrityError, match="format_version 99"):
        GalleryIndex.load(tmp_path / "idx")


def test_mismatched_model_or_dimension_is_refused(tmp_path: Path) -> None:
    features, recs = make_gallery()
    GalleryIndex.build(features, recs, model_sha256=SHA).save(tmp_path / "idx")
    with pytest.raises(ModelMismatchError, match="model sha256"):
        GalleryIndex.load(tmp_path / "idx", expected_model_sha256="f" * 64)
    with pytest.raises(ModelMismatchError, match="dimension is 12.*produces 2048"):
        GalleryIndex.load(tmp_path / "idx", expected_dim=2048)
    assert len(GalleryIndex.load(tmp_path / "idx", expected_model_sha256=SHA, expected_dim=DIM)) == 60


@pytest.mark.parametrize("mode", ["instance", "centroid"])
@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
def test_append_then_save_equals_one_shot_build(tmp_path: Path, mode: str, factory: str) -> None:
    features, recs = make_gallery()
    first, second = np.arange(0, 35), np.arange(35, 60)
    GalleryIndex.build(subset(features, first), recs, mode=mode, factory=factory).save(tmp_path / "idx")
    gi = GalleryIndex.load(tmp_path / "idx")
    new = gi.add(subset(features, second), recs)
    assert new, "the second half adds (instance) or updates (centroid) entries"
    gi.save(tmp_path / "idx")  # replaces the folder atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    appended = GalleryIndex.load(tmp_path / "idx")
    one_shot = GalleryIndex.build(features, recs, mode=mode, factory=factory)
    assert len(appended) == len(one_shot)
    if mode == "instance":
        assert {e.path: e.pid for e in appended.entries()} == {e.path: e.pid for e in one_shot.entries()}
    else:  # the same members per identity (the representative may differ: it is picked at first sight)
        assert {e.pid: sorted(e.members) for e in appended.entries()} == {
            e.pid: sorted(e.members) for e in one_shot.entries()
        }
        naive = naive_centroids(features, recs)
        for e in appended.entries():
            np.testing.assert_allclose(appended.centroids()[e.id], naive[e.pid], atol=1e-6)
    if factory == "Flat":
        queries = np.random.default_rng(3).standard_normal((5, DIM))
        key = "path" if mode == "instance" else "pid"
        got = [[getattr(appended.entry(int(i)), key) for i in row] for row in appended.search(queries, 5)[1]]
        want = [[getattr(one_shot.entry(int(i)), key) for i in row] for row in one_shot.search(queries, 5)[1]]
        assert got == want


def test_caption_records_collapse_to_one_image() -> None:
    recs = [
        Record("/d/a.jpg", 1, 0, text="a man in red", image_id=0),
        Record("/d/a.jpg", 1, 0, text="red shirt, black bag", image_id=0),
        Record("/d/b.jpg", 2, 1, text="a woman in blue", image_id=1),
    ]
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 4)).astype(np.float32)
    features = Features(img[[0, 0, 1]], np.array([1, 1, 2]), np.array([0, 0, 1]), np.arange(3))
    gi = GalleryIndex.build(features, recs)
    assert len(gi) == 2
    assert gi.entry(0).captions == ("a man in red", "red shirt, black bag") and gi.entry(0).image_id == 0
    # Re-adding a known image with one new caption only merges the caption.
    more = [Record("/d/a.jpg", 1, 0, text="holding a phone", image_id=0)]
    assert gi.add(Features(img[:1], np.array([1]), np.array([0]), np.arange(1)), more) == [0]
    assert len(gi) == 2 and gi.entry(0).captions[-1] == "holding a phone"


def test_inconsistent_records_raise() -> None:
    features, recs = make_gallery(n=10, n_ids=2)
    with pytest.raises(ValueError, match="point into"):
        GalleryIndex.build(features, recs[:5])
    wrong = Features(features.feats, (features.pids + 1) % 2, features.camids, features.index)
    with pytest.raises(ValueError, match="has pid"):
        GalleryIndex.build(wrong, recs)
    gi = GalleryIndex.build(features, recs)
    moved = [Record(r.path, r.pid + 5, r.camid) for r in recs]
    with pytest.raises(ValueError, match="already indexed with pid"):
        gi.add(Features(features.feats, features.pids + 5, features.camids, features.index), moved)
    with pytest.raises(ValueError, match="dimension"):
        gi.search(np.ones((1, DIM + 1)), 3)
    with pytest.raises(KeyError, match="no entry with id 10"):
        gi.entry(10)
    with pytest.raises(ValueError, match="mode"):
        GalleryIndex(DIM, mode="cluster")


def test_save_refuses_foreign_folder_and_failed_save_keeps_old_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features, recs = make_gallery()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a gallery index folder"):
        GalleryIndex.build(features, recs).save(tmp_path / "photos")
    small = GalleryIndex.build(subset(features, np.arange(10)), recs)
    small.save(tmp_path / "idx")

    def broken(self: GalleryIndex, path: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(GalleryIndex, "_write_sqlite", broken)
    with pytest.raises(OSError, match="disk full"):
        GalleryIndex.build(features, recs).save(tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "photos"], "temp folder cleaned up"
    monkeypatch.undo()
    assert len(GalleryIndex.load(tmp_path / "idx")) == 10, "the previous index is untouched"


@pytest.mark.parametrize(("mode", "factory"), [("instance", "IVF16,Flat"), ("centroid", "Flat")])
def test_index_builder_resumes_after_interruption(tmp_path: Path, mode: str, factory: str) -> None:
    features, recs = make_gallery()
    out = tmp_path / "idx"

    def batch_features(batch: list[Record]) -> Features:
        rows = [int(np.flatnonzero(features.index == recs.index(r))[0]) for r in batch]
        f = subset(features, np.array(rows))
        return Features(f.feats, f.pids, f.camids, np.arange(len(batch)))  # index points into `batch`

    builder = IndexBuilder(out, dim=DIM, mode=mode, factory=factory, model_sha256=SHA)
    todo = builder.pending(recs)
    for start in range(0, 24, 8):  # three batches, then the process "dies"
        builder.add(batch_features(todo[start : start + 8]), todo[start : start + 8])
    del builder
    assert not out.exists()

    resumed = IndexBuilder(out, dim=DIM, mode=mode, factory=factory, model_sha256=SHA)
    assert resumed.num_done == 24
    rest = resumed.pending(recs)
    assert rest == recs[24:]
    for start in range(0, len(rest), 8):
        resumed.add(batch_features(rest[start : start + 8]), rest[start : start + 8])
    built = resumed.finish()
    assert not resumed.work_dir.exists()
    loaded = GalleryIndex.load(out, expected_model_sha256=SHA)
    one_shot = GalleryIndex.build(features, recs, mode=mode, factory="Flat")
    assert len(loaded) == len(built) == len(one_shot)
    if mode == "instance":
        assert {e.path: e.pid for e in loaded.entries()} == {e.path: e.pid for e in one_shot.entries()}
    else:
        assert {e.pid: sorted(e.members) for e in loaded.entries()} == {
            e.pid: sorted(e.members) for e in one_shot.entries()
        }
        naive = naive_centroids(features, recs)
        for e in loaded.entries():
            np.testing.assert_allclose(loaded.centroids()[e.id], naive[e.pid], atol=1e-6)


def test_index_builder_refuses_changed_settings(tmp_path: Path) -> None:
    IndexBuilder(tmp_path / "idx", dim=DIM, factory="Flat", model_sha256=SHA)
    with pytest.raises(ValueError, match="other settings.*factory"):
        IndexBuilder(tmp_path / "idx", dim=DIM, factory="HNSW8", model_sha256=SHA)
    with pytest.raises(ValueError, match="valid forms"):
        IndexBuilder(tmp_path / "other", dim=DIM, factory="KNN")


def test_index_builder_refuses_a_resume_over_another_dataset(tmp_path: Path) -> None:
    features, recs = make_gallery()
    other_feats, other = make_gallery(n=40, seed=1)
    other = [Record(r.path.replace("/data/", "/other/"), r.pid, r.camid) for r in other]
    out = tmp_path / "idx"
    first = IndexBuilder(out, dim=DIM, model_sha256=SHA, dataset=dataset_identity(recs, root="/data"))
    rows = np.flatnonzero(features.index < 20)
    part = subset(features, rows)
    first.add(part, recs)  # a partial build of the first dataset, then the process dies
    ident = dataset_identity(other, root="/other")
    with pytest.raises(ValueError, match=r"unfinished build of another dataset exists.*--fresh"):
        IndexBuilder(out, dim=DIM, model_sha256=SHA, dataset=ident)
    fresh = IndexBuilder(out, dim=DIM, model_sha256=SHA, dataset=ident, fresh=True)
    assert fresh.num_done == 0 and fresh.pending(other) == other
    fresh.add(other_feats, other)
    built = fresh.finish()
    assert sorted(e.path for e in built.entries()) == sorted(r.path for r in other)  # nothing stale merged
    # the same records in the same place identify the same dataset
    assert dataset_identity(recs, root="/data") == dataset_identity(list(recs), root="/data")
    assert dataset_identity(recs[:-1], root="/data") != dataset_identity(recs, root="/data")


def test_damaged_build_shard_is_named(tmp_path: Path) -> None:
    features, recs = make_gallery()
    out = tmp_path / "idx"
    builder = IndexBuilder(out, dim=DIM, model_sha256=SHA)
    builder.add(features, recs)
    shard = next(builder.work_dir.glob("shard-*.npz"))
    shard.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(IndexIntegrityError, match=rf"{shard}: unreadable build shard \(BadZipFile"):
        IndexBuilder(out, dim=DIM, model_sha256=SHA)
