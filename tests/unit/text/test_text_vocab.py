"""Tokenizer and vocabulary: hand-worked captions, ids, unknown words, save/load, use by the dataset."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from reidkit.data.dataset import ImageTextDataset, collate
from reidkit.data.text import PAD, UNK, Vocab, build_vocab, tokenize
from reidkit.types import Record


def test_tokenize_lower_cases_and_splits_punctuation() -> None:
    text = "A woman, in a RED t-shirt; the man's bag...(black)!"
    assert tokenize(text) == ["a", "woman", "in", "a", "red", "t-shirt", "the", "man's", "bag", "black"]
    assert tokenize("  ,.;  ") == []
    assert tokenize("red-") == ["red"]  # a dangling hyphen is punctuation


def test_build_vocab_orders_by_count_then_alphabet_and_applies_min_count() -> None:
    caps = ["a red coat", "A red bag.", "a blue coat", "zebra"]
    # counts: a 3, red 2, coat 2, bag 1, blue 1, zebra 1
    v = build_vocab(caps)
    assert v.words == ("<pad>", "<unk>", "a", "coat", "red", "bag", "blue", "zebra")
    v2 = build_vocab(caps, min_count=2)
    assert v2.words == ("<pad>", "<unk>", "a", "coat", "red")
    assert build_vocab(caps, max_size=4).words == ("<pad>", "<unk>", "a", "coat")


def test_encode_maps_unknown_words_to_unk() -> None:
    v = build_vocab(["a red coat", "a red bag"], min_count=2)  # a, red
    assert (PAD, UNK) == (0, 1)
    assert v.encode("A RED hat, a coat") == [
        v.words.index("a"),
        v.words.index("red"),
        UNK,
        v.words.index("a"),
        UNK,
    ]
    assert v("red") == v.encode("red")  # callable: the ImageTextDataset tokenizer


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(["a"], min_count=0)
    with pytest.raises(ValueError, match="no word occurs"):
        build_vocab([",,,"])
    with pytest.raises(TypeError, match="caption 1"):
        build_vocab(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="must start with"):
        Vocab(("a", "b"))


def test_save_load_roundtrip_and_digest(tmp_path: Path) -> None:
    v = build_vocab(["a red coat and a blue bag"])
    v.save(tmp_path / "vocab.json")
    w = Vocab.load(tmp_path / "vocab.json")
    assert w == v and w.digest() == v.digest() and w.encode("blue coat") == v.encode("blue coat")
    assert build_vocab(["a red coat"]).digest() != v.digest()
    assert pickle.loads(pickle.dumps(v)).encode("red bag") == v.encode("red bag")  # DataLoader workers
    (tmp_path / "bad.json").write_text('{"words": 3}')
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Vocab.load(tmp_path / "missing.json")


def test_dataset_batches_are_padded_with_zero() -> None:
    v = build_vocab(["a man in red", "a woman"])
    recs = [Record("x.jpg", 3, text="A man in red."), Record("y.jpg", 4, text="a woman!")]
    batch = collate([ImageTextDataset(recs, None, v)[i] for i in range(2)])
    assert batch.tokens is not None and batch.lengths is not None
    assert batch.tokens.tolist() == [v.encode("a man in red"), v.encode("a woman") + [PAD, PAD]]
    assert batch.lengths.tolist() == [4, 2]
