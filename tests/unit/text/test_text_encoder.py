"""TextEncoder: padding never changes a sentence's feature; packed BiGRU equals a per-sentence loop."""

from __future__ import annotations

import pytest
import torch

from reidkit.data.text import random_word_table
from reidkit.models.text_encoder import TextEncoder


def make(train_table: bool = False, out_dim: int = 6, bn: bool = False) -> TextEncoder:
    torch.manual_seed(0)
    enc = TextEncoder(
        random_word_table(12, 5, seed=1), hidden=4, out_dim=out_dim, train_table=train_table, bn=bn
    )
    if bn:  # non-trivial running statistics, so eval mode's BN is a real affine map
        enc.proj[-1].running_mean.uniform_(-1, 1)
        enc.proj[-1].running_var.uniform_(0.5, 2)
    return enc


def naive_feature(enc: TextEncoder, ids: list[int]) -> torch.Tensor:
    """One sentence, no padding, no packing: GRU over its words, max over time, projection."""
    x = enc.embed.weight[torch.tensor(ids)].unsqueeze(0)  # [1, n, Dw]
    out, _ = enc.gru(x)  # [1, n, 2H]
    return enc.proj(out[0].max(0).values[None])[0]  # [out_dim]


SENTENCES = [[3, 5, 7], [2], [4, 4, 9, 11, 10], [6, 1]]


def batch(sentences: list[list[int]], extra_pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(s) for s in sentences) + extra_pad
    tokens = torch.zeros(len(sentences), L, dtype=torch.long)
    for i, s in enumerate(sentences):
        tokens[i, : len(s)] = torch.tensor(s)
    return tokens, torch.tensor([len(s) for s in sentences])


@pytest.mark.parametrize("bn", [False, True])
def test_batched_features_equal_the_per_sentence_loop(bn: bool) -> None:
    enc = make(bn=bn).eval()
    with torch.no_grad():
        feats = enc(*batch(SENTENCES))  # [4, 6]
        for i, s in enumerate(SENTENCES):
            torch.testing.assert_close(feats[i], naive_feature(enc, s), atol=1e-6, rtol=1e-5)
    assert feats.shape == (4, 6) and enc.dim == 6


@pytest.mark.parametrize("bn", [False, True])
def test_feature_does_not_change_with_padding(bn: bool) -> None:
    enc = make(bn=bn).eval()
    with torch.no_grad():
        alone = enc(*batch([SENTENCES[0]]))  # [1, 6], no padding at all
        padded = enc(*batch(SENTENCES, extra_pad=7))  # padded to 12 inside a batch
    torch.testing.assert_close(padded[0], alone[0], atol=1e-6, rtol=1e-5)


def test_frozen_table_gets_no_gradient_and_trainable_table_skips_padding_row() -> None:
    enc = make()
    assert not enc.embed.weight.requires_grad
    enc(*batch(SENTENCES)).sum().backward()
    assert enc.embed.weight.grad is None and enc.gru.weight_ih_l0.grad is not None
    enc = make(train_table=True)
    enc(*batch(SENTENCES, extra_pad=2)).sum().backward()
    g = enc.embed.weight.grad
    assert g is not None and torch.equal(g[0], torch.zeros(5))  # padding row untouched
    assert g[3].abs().sum() > 0 and torch.equal(g[8], torch.zeros(5))  # word 8 is never used


def test_no_projection_gives_pooled_bigru_output() -> None:
    enc = make(out_dim=0)
    assert enc.dim == 8 and enc(*batch(SENTENCES)).shape == (4, 8)


def test_bad_shapes_and_lengths_raise() -> None:
    enc = make()
    tokens, lengths = batch(SENTENCES)
    with pytest.raises(ValueError, match="lengths must lie"):
        enc(tokens, torch.tensor([3, 0, 5, 2]))
    with pytest.raises(ValueError, match="lengths must lie"):
        enc(tokens, torch.tensor([3, 1, 6, 2]))
    with pytest.raises(ValueError, match="tokens \\[B, L\\]"):
        enc(tokens[0], lengths)
    with pytest.raises(ValueError, match="table must be"):
        TextEncoder(torch.zeros(5))
