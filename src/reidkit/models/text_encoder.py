"""TextReID's text stream: word-embedding table -> BiGRU -> max-pool over time -> projection.

The table comes from `reidkit.data.text.make_word_table` (a frozen pretrained encoder run word by word, or
random); it is frozen unless `train_table`. Padding (id 0) never reaches the GRU: sequences are packed by
their lengths and the max-pool ignores padded steps, so a sentence's feature does not depend on how much
padding its batch adds (in eval mode when `bn`: in training, BatchNorm uses the batch's statistics).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from reidkit.data.text import PAD


class TextEncoder(nn.Module):
    """(tokens [B, L] long, 0 = padding; lengths [B]) -> sentence features [B, out_dim]."""

    def __init__(
        self,
        table: torch.Tensor,
        hidden: int = 512,
        out_dim: int = 512,
        *,
        train_table: bool = False,
        num_layers: int = 1,
        bn: bool = False,
    ) -> None:
        super().__init__()
        if table.dim() != 2 or table.shape[0] < 2:
            raise ValueError(f"TextEncoder: table must be [V >= 2, D], got {tuple(table.shape)}")
        if hidden <= 0 or out_dim < 0 or num_layers <= 0:
            raise ValueError(
                f"TextEncoder: need hidden > 0, out_dim >= 0, num_layers > 0; got "
                f"{hidden}, {out_dim}, {num_layers}"
            )
        self.embed = nn.Embedding.from_pretrained(
            table.float().clone(), freeze=not train_table, padding_idx=PAD
        )  # [V, Dw]
        self.gru = nn.GRU(table.shape[1], hidden, num_layers=num_layers, batch_first=True, bidirectional=True)
        # out_dim = 0: no projection, the pooled BiGRU output (2 * hidden) is the feature; bn: BatchNorm1d
        # on the feature (see reidkit.methods.textreid.projection for why)
        self.dim = out_dim if out_dim > 0 else 2 * hidden
        layers = [nn.Linear(2 * hidden, out_dim)] if out_dim > 0 else []
        self.proj = nn.Sequential(*layers, *([nn.BatchNorm1d(self.dim)] if bn else []))  # empty: identity

    @property
    def vocab_size(self) -> int:
        return int(self.embed.num_embeddings)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(tokens [B, L], lengths [B]) -> the projected feature [B, dim]."""
        return self.proj(self.pooled(tokens, lengths))

    def pooled(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The BiGRU output max-pooled over the caption's words, before the projection: [B, 2 * hidden]."""
        if tokens.dim() != 2 or lengths.dim() != 1 or lengths.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"TextEncoder: expected tokens [B, L] and lengths [B], got "
                f"{tuple(tokens.shape)} and {tuple(lengths.shape)}"
            )
        lens = lengths.detach().cpu().long()  # pack_padded_sequence requires host lengths
        if lens.numel() and (int(lens.min()) < 1 or int(lens.max()) > tokens.shape[1]):
            raise ValueError(
                f"TextEncoder: lengths must lie in [1, {tokens.shape[1]}] (the padded length), "
                f"got min {int(lens.min())}, max {int(lens.max())}"
            )
        x = self.embed(tokens)  # [B, L, Dw]
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, padding_value=float("-inf"))  # [B, max(len), 2H]
        return h.max(dim=1).values  # [B, 2H]
