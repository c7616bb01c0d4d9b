"""TextReID: text-based person search with limited data (Han et al., BMVC 2021), CM-MoCo training.

Two streams: image = backbone -> pooling -> Linear; text = frozen word table -> BiGRU -> max-pool -> Linear
(`reidkit.models.text_encoder`); both Linears are followed by a BatchNorm1d unless `proj_bn=False` (a
deviation from the paper, see `projection`). Query encoders train; key encoders are momentum copies
(θk ← m·θk + (1−m)·θq) that get no gradients. Two queues hold past image and text keys with their
identities. Loss = moco_weight·(InfoNCE(image q vs text keys + text queue) + InfoNCE(text q vs image keys +
image queue)), same identity excluded from the negatives, + align_weight·alignment + id_weight·(CE of a
shared classifier with unit-norm class vectors on both modalities). Keys are enqueued and key encoders
updated after the optimiser step. Inference uses the query encoders only; the embedders return
L2-normalised `feat` (cosine similarity).

Two options give the reference code's behaviour (BrandonHanx/TextReID, moco_head/head.py):
`negatives="queue_only"` (InfoNCE negatives from the queue only, minus every entry whose id is in the batch;
see `cross_modal_info_nce`) and `key_projection="live"` (keys = the query encoder's projection applied to the
momentum encoder's pooled features; the momentum copy of the projection is kept, EMA-updated, but unused).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.config import ConfigError, ModelConfig
from reidkit.data.text import Vocab, build_vocab, make_word_table
from reidkit.engine import distributed
from reidkit.losses.crossmodal import NEGATIVE_MODES, alignment_loss, cross_modal_info_nce
from reidkit.memory.ema import ema_update, momentum_copy
from reidkit.memory.queue import FeatureQueue
from reidkit.methods.base import BuildInputs, Method, constructor_kwargs, reject_model_freezing
from reidkit.models.backbones import make_backbone
from reidkit.models.embedder import ImageEmbedder, TextEmbedder
from reidkit.models.freeze import KeepsFrozen
from reidkit.models.heads import make_pooling
from reidkit.models.text_encoder import TextEncoder
from reidkit.types import Batch, Embedder, Record


@dataclass(frozen=True)
class TextReIDConfig:
    """TextReID settings: the vocabulary and word-table fields and the encoder shapes are read by `build`, the
    rest are keywords of `TextReID.__init__` (defaults here)."""

    name: str = "textreid"
    word_table: str = "minilm"  # minilm | clip | random (see reidkit.data.text.WORD_TABLES)
    train_table: bool = False  # fine-tune the word table; "random" tables are always trained
    random_dim: int = 384  # width of a "random" table
    clip_checkpoint: str | None = None  # local open_clip checkpoint for word_table=clip
    clip_model: str = "ViT-B-32"
    min_count: int = 1  # vocabulary: words seen fewer times in the training captions become <unk>
    table_cache: str | None = None  # folder for cached word tables (None: reidkit's cache folder)
    gru_hidden: int = 512  # per direction
    embed_dim: int = 512  # shared image-text embedding
    queue_size: int = 2048  # 0 = in-batch negatives only
    momentum: float = 0.999
    temperature: float = 0.07
    moco_weight: float = 1.0
    align_weight: float = 1.0
    id_weight: float = 1.0
    align_alpha: float = 0.6
    align_beta: float = 0.4
    align_scale_pos: float = 10.0
    align_scale_neg: float = 40.0
    label_smoothing: float = 0.0
    proj_bn: bool = True  # BatchNorm1d after both projections (without it small sets stay at chance)
    freeze_backbone: bool = False  # keep the ImageNet image backbone fixed: train projections + text side
    # InfoNCE negatives: batch_and_queue (other batch keys + queue, per-row id mask) | queue_only (reference:
    # the queue alone, entries of any id in the batch dropped)
    negatives: str = "batch_and_queue"
    # projection of the keys: momentum (the key encoder's EMA copy) | live (reference: the query projection
    # on the momentum encoder's pooled features)
    key_projection: str = "momentum"

    def __post_init__(self) -> None:
        if self.negatives not in NEGATIVE_MODES:
            raise ConfigError(f"method.negatives: {self.negatives!r}; valid: {list(NEGATIVE_MODES)}")
        if self.key_projection not in KEY_PROJECTIONS:
            raise ConfigError(
                f"method.key_projection: {self.key_projection!r}; valid: {list(KEY_PROJECTIONS)}"
            )


KEY_PROJECTIONS = ("momentum", "live")


def _project(proj: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`proj` (Linear / BatchNorm1d layers) applied to x without side effects: a BatchNorm in training mode
    normalises with x's batch statistics but leaves its running statistics alone (keys must not move the
    query encoder's BN state)."""
    for layer in proj.children() if isinstance(proj, nn.Sequential) else (proj,):
        if isinstance(layer, nn.BatchNorm1d) and layer.training:
            x = F.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)
        else:
            x = layer(x)
    return x


def projection(in_dim: int, dim: int, bn: bool) -> nn.Module:
    """Linear, optionally followed by BatchNorm1d. The BN removes the large component that all pooled
    features share (post-ReLU image features, max-pooled GRU states): without it every cosine similarity
    starts near one value and the cross-modal losses stay at chance on small sets."""
    return nn.Sequential(nn.Linear(in_dim, dim), *([nn.BatchNorm1d(dim)] if bn else []))


class ImageEncoder(KeepsFrozen):
    """Backbone feature map -> global pooling -> projection: images [B, 3, H, W] -> {"feat": [B, dim]}."""

    def __init__(
        self, backbone: nn.Module, in_dim: int, dim: int, pooling: str = "avg", *, bn: bool = False
    ) -> None:
        super().__init__()
        self.backbone, self.pool, self.dim = backbone, make_pooling(pooling), dim
        self.proj = projection(in_dim, dim, bn)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"feat": self.proj(self.pool(self.backbone(images)))}  # [B, dim]


class TextReID(Method):
    """CM-MoCo over an image encoder and a text encoder of the same output `dim`; `num_classes` train ids."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        num_classes: int,
        *,
        queue_size: int = TextReIDConfig.queue_size,
        momentum: float = TextReIDConfig.momentum,
        temperature: float = TextReIDConfig.temperature,
        moco_weight: float = TextReIDConfig.moco_weight,
        align_weight: float = TextReIDConfig.align_weight,
        id_weight: float = TextReIDConfig.id_weight,
        align_alpha: float = TextReIDConfig.align_alpha,
        align_beta: float = TextReIDConfig.align_beta,
        align_scale_pos: float = TextReIDConfig.align_scale_pos,
        align_scale_neg: float = TextReIDConfig.align_scale_neg,
        label_smoothing: float = TextReIDConfig.label_smoothing,
        freeze_backbone: bool = TextReIDConfig.freeze_backbone,
        negatives: str = TextReIDConfig.negatives,
        key_projection: str = TextReIDConfig.key_projection,
        vocab: Vocab | None = None,
    ) -> None:
        super().__init__()
        if negatives not in NEGATIVE_MODES or key_projection not in KEY_PROJECTIONS:
            raise ValueError(
                f"TextReID: negatives {negatives!r} (valid: {', '.join(NEGATIVE_MODES)}), key_projection "
                f"{key_projection!r} (valid: {', '.join(KEY_PROJECTIONS)})"
            )
        if image_encoder.dim != text_encoder.dim:
            raise ValueError(f"TextReID: image dim {image_encoder.dim} != text dim {text_encoder.dim}")
        if num_classes <= 0 or not 0.0 <= momentum <= 1.0 or temperature <= 0:
            raise ValueError(
                f"TextReID: need num_classes > 0, momentum in [0, 1], temperature > 0; got "
                f"{num_classes}, {momentum}, {temperature}"
            )
        self.dim = image_encoder.dim
        self.vocab = vocab  # caption -> token ids (`tokenizer()`), saved beside the checkpoints as vocab.json
        self.image_q, self.text_q = image_encoder, text_encoder
        self.image_k, self.text_k = momentum_copy(image_encoder), momentum_copy(text_encoder)
        self.image_queue, self.text_queue = (
            FeatureQueue(queue_size, self.dim),
            FeatureQueue(queue_size, self.dim),
        )
        # shared by both modalities; its rows are L2-normalised in use (TextReID's instance loss)
        self.classifier = nn.Linear(self.dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.m, self.t = momentum, temperature
        self.w_moco, self.w_align, self.w_id = moco_weight, align_weight, id_weight
        self.align_kw = {
            "alpha": align_alpha,
            "beta": align_beta,
            "scale_pos": align_scale_pos,
            "scale_neg": align_scale_neg,
        }
        self.eps = label_smoothing
        self.negatives, self.key_projection = negatives, key_projection
        # a frozen image backbone (weights and BN statistics) is shared by the query and key image encoders:
        # one forward pass per step, no backward through it; only the projections and the text side train
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.image_k.backbone = self.image_q.backbone
            for enc in (self.image_q, self.image_k):
                enc.keep_frozen(enc.backbone)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """With a shared frozen backbone, the query encoder's backbone weights win: a checkpoint trained
        without freezing holds two different backbones, and the key copy must not overwrite the query's;
        one that lacks the key copy's backbone keys still loads fully."""
        if self.freeze_backbone:
            qp, kp = "image_q.backbone.", "image_k.backbone."
            fixed = OrderedDict(state_dict)
            for k in self.state_dict():
                if k.startswith(kp) and qp + k[len(kp) :] in fixed:
                    fixed[k] = fixed[qp + k[len(kp) :]]
            if hasattr(state_dict, "_metadata"):
                fixed._metadata = state_dict._metadata  # type: ignore[attr-defined]
            state_dict = fixed
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(query feature [B, D], normalised key feature [B, D]); the key side without gradients."""
        live = self.key_projection == "live"
        if self.freeze_backbone:
            with torch.no_grad():
                fmap = self.image_q.backbone(images)  # [B, C, h, w], shared by both encoders
                pooled = self.image_k.pool(fmap)
                key = _project(self.image_q.proj, pooled) if live else self.image_k.proj(pooled)
            query = self.image_q.proj(self.image_q.pool(fmap))  # pooling (GeM's p) still trains
        else:
            query = self.image_q(images)["feat"]
            with torch.no_grad():
                if live:
                    key = _project(self.image_q.proj, self.image_k.pool(self.image_k.backbone(images)))
                else:
                    key = self.image_k(images)["feat"]
        return query.float(), F.normalize(key.float(), dim=1)

    @torch.no_grad()
    def _text_keys(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalised text keys [B, D] from the momentum text encoder (projection per `key_projection`)."""
        if self.key_projection == "live":
            key = _project(self.text_q.proj, self.text_k.pooled(tokens, lengths))
        else:
            key = self.text_k(tokens, lengths)
        return F.normalize(key.float(), dim=1)

    def encode_text(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Query text encoder: (tokens [B, L], lengths [B]) -> [B, dim], not normalised."""
        return self.text_q(tokens, lengths)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if batch.tokens is None or batch.lengths is None:
            raise ValueError("TextReID.training_step needs image-text batches (tokens and lengths)")
        pids = batch.pids  # [B]
        img, img_k = self._image_features(batch.images)  # [B, D] each
        txt = self.text_q(batch.tokens, batch.lengths).float()  # [B, D]
        txt_k = self._text_keys(batch.tokens, batch.lengths)  # [B, D]
        img_queue, img_queue_ids = self.image_queue.get()  # [N, D], [N]
        txt_queue, txt_queue_ids = self.text_queue.get()
        neg = self.negatives
        i2t = cross_modal_info_nce(img, txt_k, pids, txt_queue, txt_queue_ids, self.t, negatives=neg)
        t2i = cross_modal_info_nce(txt, img_k, pids, img_queue, img_queue_ids, self.t, negatives=neg)
        align = alignment_loss(img, txt, pids, **self.align_kw)
        w = F.normalize(self.classifier.weight, dim=1)  # unit class vectors: logits scale with |feature|
        logits_i, logits_t = F.linear(img, w), F.linear(txt, w)  # [B, C]
        ident = F.cross_entropy(logits_i, pids, label_smoothing=self.eps) + F.cross_entropy(
            logits_t, pids, label_smoothing=self.eps
        )
        loss = self.w_moco * (i2t + t2i) + self.w_align * align + self.w_id * ident
        with torch.no_grad():
            sim = F.normalize(txt, dim=1) @ F.normalize(img, dim=1).t()  # [B, B] text -> image
            t2i_r1 = (pids[sim.argmax(1)] == pids).float().mean()
            acc = (
                (logits_i.argmax(1) == pids).float().mean() + (logits_t.argmax(1) == pids).float().mean()
            ) / 2
        return {
            "loss": loss,
            "i2t": i2t.detach(),
            "t2i": t2i.detach(),
            "align": align.detach(),
            "id": ident.detach(),
            "acc": acc,
            "batch_t2i_r1": t2i_r1,
            "keys_image": img_k,
            "keys_text": txt_k,
        }  # keys: [B, D], enqueued after the step

    @torch.no_grad()
    def after_optimizer_step(self, batch: Batch, out: dict[str, torch.Tensor]) -> None:
        """Enqueue this step's keys with their identities, then move the key encoders towards the queries."""
        pids = distributed.all_gather_cat(batch.pids)  # keys of all ranks, as MoCo: the queues stay equal
        self.image_queue.enqueue(distributed.all_gather_cat(out["keys_image"]), pids)
        self.text_queue.enqueue(distributed.all_gather_cat(out["keys_text"]), pids)
        ema_update(self.image_q, self.image_k, self.m)
        ema_update(self.text_q, self.text_k, self.m)

    def epoch_stats(self) -> dict[str, float]:
        return {"queue_len": float(len(self.text_queue))}

    def embedders(self) -> dict[str, Embedder]:
        return {
            "image": ImageEmbedder(self.image_q, self.dim, key="feat"),
            "text": TextEmbedder(self.text_q, self.dim, self.text_q),
        }

    def tokenizer(self) -> Callable[[str], torch.Tensor] | None:
        return self.vocab


def build(config: TextReIDConfig, model: ModelConfig, inputs: BuildInputs) -> TextReID:
    """TextReID with its vocabulary: built from the training captions and saved to `run_dir/vocab.json`,
    or, when a checkpoint is being loaded (`inputs.state`), read back from there with the word table."""
    reject_model_freezing(model, "textreid", "freezes its image backbone with method.freeze_backbone")
    if inputs.run_dir is None:
        raise ValueError("textreid needs a run folder for its vocabulary (BuildInputs.run_dir)")
    vocab_file = Path(inputs.run_dir) / "vocab.json"
    if inputs.state is not None:
        if not vocab_file.is_file():
            raise FileNotFoundError(f"{vocab_file}: a textreid checkpoint needs its vocab.json beside it")
        vocab, table = Vocab.load(vocab_file), inputs.state["text_q.embed.weight"]
    else:
        vocab = caption_vocab(config, inputs.records)
        vocab.save(vocab_file)
        table = make_word_table(
            config.word_table,
            vocab,
            cache_dir=_table_cache(config),
            dim=config.random_dim,
            seed=inputs.seed,
            checkpoint=config.clip_checkpoint,
            clip_model=config.clip_model,
            device=inputs.device,
        )
    return build_textreid(
        config,
        inputs.num_classes,
        table,
        backbone=model.backbone,
        weights=inputs.weights,
        last_stride=model.last_stride,
        pooling=model.pooling,
        vocab=vocab,
    )


def caption_vocab(config: TextReIDConfig, records: Sequence[Record]) -> Vocab:
    """The vocabulary of the training captions (every record must carry one)."""
    if not records:
        raise ValueError(
            "textreid builds its vocabulary from the training captions: pass the training records"
        )
    missing = [r.path for r in records if r.text is None]
    if missing:
        raise ValueError(
            f"textreid needs captions; {len(missing)} records have none, e.g. {missing[0]} "
            "(use a text layout such as cuhkpedes)"
        )
    return build_vocab([r.text for r in records if r.text is not None], min_count=config.min_count)


def _table_cache(config: TextReIDConfig) -> Path:
    from reidkit.data.synthetic import default_cache_dir

    return Path(config.table_cache) if config.table_cache else default_cache_dir() / "wordtables"


def build_textreid(
    config: TextReIDConfig,
    num_classes: int,
    word_table: torch.Tensor,
    *,
    backbone: str,
    weights: str | Path | None = None,
    last_stride: int = 1,
    pooling: str = "avg",
    vocab: Vocab | None = None,
) -> TextReID:
    """TextReID from its config, a word table [V, Dw] (`data.text.make_word_table`) and a backbone name."""
    body, in_dim = make_backbone(backbone, weights, last_stride=last_stride)
    image = ImageEncoder(body, in_dim, config.embed_dim, pooling, bn=config.proj_bn)
    text = TextEncoder(
        word_table,
        config.gru_hidden,
        config.embed_dim,
        train_table=config.train_table or config.word_table == "random",
        bn=config.proj_bn,
    )
    return TextReID(image, text, num_classes, vocab=vocab, **constructor_kwargs(TextReID, config))
