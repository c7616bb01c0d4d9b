"""Strict YAML -> frozen dataclasses, `key.sub=value` overrides, and dump().

A recipe lists only what differs from the defaults. Unknown keys and wrong types raise with the valid choices.
Method-specific settings live under `method:`; `method.name` picks the method's own config dataclass from
`reidkit.methods.METHODS` (each method module holds its config: the only place its defaults live).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib.util
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.recipe_paths import absolute_overrides, recipe_relative
from reidkit.utils import atomic_write

log = logging.getLogger(__name__)


def _at_least(cfg: Any, section: str, bounds: dict[str, int]) -> None:
    """Raise a ConfigError naming the first field below its lower bound (checked when the config is built,
    so a bad value fails before any work, not after training)."""
    for name, low in bounds.items():
        value = getattr(cfg, name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < low:
            raise ConfigError(f"{section}.{name}: expected an integer >= {low}, got {value}")


BATCH_SCOPES = ("global", "per_rank")
CROPS = ("pad", "random_resized")
SAMPLERS = ("pk", "cluster_contrast")
TEXT_RERANKS = ("kreciprocal", "topk_overlap")
DIST_BACKENDS = ("auto", "nccl", "gloo")


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is loaded."""

    format: str = "synthetic"  # a reader name (`reidkit datasets list`) or "synthetic"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # reader options, e.g. {train_split: val}
    height: int = 256
    width: int = 128
    p: int = 16  # identities per batch
    k: int = 4  # images per identity
    flip: float = 0.5
    pad: int = 10
    erasing: float = 0.5
    color_jitter: float = 0.0  # brightness, contrast and saturation strength (0 = no colour jitter)
    color_jitter_p: float = 1.0  # probability the jitter is applied to an image
    color_jitter_hue: float | None = None  # None = color_jitter / 2
    # pad: resize to height x width, pad + random crop (ReID); random_resized: resize to `resize` x `resize`,
    # then a random-resized crop (scale 0.16-1, ratio 3/4-4/3) to height x width; test: the centre crop
    # (fine-grained retrieval, FRPT's reference)
    crop: str = "pad"
    resize: int = 0  # crop=random_resized: the square side images are resized to before cropping
    # training batches: pk = P ids x K images, each id's images split into K-chunks, no image repeated;
    # cluster_contrast = the reference's: every id once per pass with K images drawn with replacement
    sampler: str = "pk"
    workers: int = 2
    test_batch_size: int = 128
    val_ids: int = 0  # identities carved from *training* ids for model selection (0 = none)
    few_shot: int = 0  # keep at most N images per training identity/class (0 = all)
    synthetic_ids: int = 200
    synthetic_seed: int = 0

    def __post_init__(self) -> None:
        _at_least(self, "data", {"height": 1, "width": 1, "p": 1, "k": 1, "workers": 0, "test_batch_size": 1})
        _at_least(self, "data", {"val_ids": 0, "few_shot": 0, "pad": 0, "resize": 0})
        if self.crop not in CROPS:
            raise ConfigError(f"data.crop: {self.crop!r}; valid: {list(CROPS)}")
        if self.crop == "random_resized" and self.resize < max(self.height, self.width):
            raise ConfigError(
                f"data.resize: crop=random_resized needs resize >= height and width, got {self.resize}"
            )
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"data.sampler: {self.sampler!r}; valid: {list(SAMPLERS)}")
        if not 0.0 <= self.color_jitter_p <= 1.0:
            raise ConfigError(f"data.color_jitter_p: expected a number in [0, 1], got {self.color_jitter_p}")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet50"
    weights: str | None = None  # None, "imagenet", or a state-dict file
    last_stride: int = 1
    pooling: str = "avg"  # avg | gem | max
    neck: bool = True  # BNNeck between feature and classifier
    # backbone BatchNorm stays in eval mode while training (running statistics kept, affine weights train):
    # for weights whose BNs were folded into the convs (placeholder statistics), where train-mode BN would
    # compute another function (docs/results.md, issue 5); also the usual choice for tiny batches
    freeze_bn: bool = False
    # freeze the backbone's first N stages outright (no gradients, eval mode; ctl and cluster_contrast):
    # less to fit from little data, and no backward through them (faster steps)
    freeze_stages: int = 0
    sync_bn: bool = False  # distributed training on CUDA: BatchNorm statistics over the global batch

    def __post_init__(self) -> None:
        if self.sync_bn and self.freeze_bn:
            raise ConfigError("model.sync_bn with model.freeze_bn: frozen statistics have nothing to sync")


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True  # sgd: Nesterov momentum (fast-reid's default); false = plain momentum
    epochs: int = 120
    iters_per_epoch: int = 0  # 0 = one pass of the sampler
    warmup_epochs: int = 10
    warmup_factor: float = 0.01
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.1
    grad_clip: float | None = None
    amp: bool = True  # used only on CUDA
    # distributed training: "global" = data.p x data.k is the batch of one step over all processes (each
    # takes p / N identities: N processes train on the batches of one); "per_rank" = each process takes
    # p x k (the global batch grows N times; scale the learning rate yourself)
    batch_scope: str = "global"

    def __post_init__(self) -> None:
        if self.batch_scope not in BATCH_SCOPES:
            raise ConfigError(f"optim.batch_scope: {self.batch_scope!r}; valid: {list(BATCH_SCOPES)}")
        _at_least(self, "optim", {"epochs": 1, "iters_per_epoch": 0, "warmup_epochs": 0})
        if not self.lr > 0:
            raise ConfigError(f"optim.lr: expected a number > 0, got {self.lr}")


@dataclass(frozen=True)
class EvalConfig:
    every: int = 10  # evaluate on the validation ids every N epochs (0 = only at the end)
    rerank: bool = False
    rerank_k1: int = 20  # k-reciprocal re-ranking: k1, k2, lambda (Zhong et al.'s defaults)
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    # text->image re-ranking: kreciprocal = the image one (k1, k2, lambda above) on the joint set;
    # topk_overlap = TextReID's: cosine + weight x Jaccard overlap of top-k neighbour sets
    text_rerank: str = "kreciprocal"
    text_rerank_topk: int = 5
    text_rerank_weight: float = 0.05

    def __post_init__(self) -> None:
        if self.text_rerank not in TEXT_RERANKS:
            raise ConfigError(f"eval.text_rerank: {self.text_rerank!r}; valid: {list(TEXT_RERANKS)}")
        _at_least(self, "eval", {"text_rerank_topk": 1})


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    out_dir: str = "runs/default"
    device: str = "auto"
    resume: bool = False
    tensorboard: bool = False
    log_every: int = 20
    max_steps: int = 0  # stop after N optimiser steps in total (0 = no limit); for tests and smoke runs
    dist_backend: str = "auto"  # torchrun runs: auto (nccl on CUDA, gloo on CPU) | nccl | gloo

    def __post_init__(self) -> None:
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "train.tensorboard=true needs the tensorboard package: pip install 'reidkit[tensorboard]'"
            )
        if self.dist_backend not in DIST_BACKENDS:
            raise ConfigError(f"train.dist_backend: {self.dist_backend!r}; valid: {list(DIST_BACKENDS)}")


@dataclass(frozen=True)
class Config:
    """A whole run: data, model, method, optimisation, evaluation, training."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: Any = field(default_factory=lambda: method_table()["ctl"].config())
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ConfigError(ValueError):
    """A config key, name or value that does not fit the schema."""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one YAML value to the annotated type."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner, *_rest) = typing.get_args(tp)
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    raise ConfigError(f"{where}: unsupported type {tp}")


# keys that existed and were removed: a recipe that still sets one gets this reason, not "unknown key"
REMOVED_KEYS = {
    "eval.metric": "retrieval always compares L2-normalised features by cosine similarity",
    "eval.centroids": "training always reports the centroid protocols; `reidkit eval --centroids` for eval",
}
# their values in configs written before the removal (run folders, checkpoints): dropped when read back
_REMOVED_DEFAULTS = {"eval.metric": "cosine", "eval.centroids": False}


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    for k in list(unknown):
        if _REMOVED_DEFAULTS.get(f"{where}.{k}", object()) == data[k]:  # an older run's resolved config
            log.debug("%s.%s=%r: removed key at its old default, ignored", where, k, data[k])
            data = {key: v for key, v in data.items() if key != k}
            unknown.remove(k)
        elif f"{where}.{k}" in REMOVED_KEYS:
            raise ConfigError(
                f"{where}.{k} was removed: {REMOVED_KEYS[f'{where}.{k}']}; delete it from the recipe"
            )
    if unknown:
        dotted = (lambda k: f"{where}.{k}") if where else str
        near = {k: difflib.get_close_matches(str(k), names, n=1) for k in unknown}
        hint = "".join(f"{dotted(k)}: did you mean {dotted(m[0])}? " for k, m in near.items() if m)
        raise ConfigError(f"{hint}{where or 'config'}: unknown key(s) {unknown}; valid keys: {names}")
    kwargs = {}
    for name, value in data.items():
        sub = f"{where}.{name}" if where else name
        if cls is Config and name == "method":
            kwargs[name] = _build_method(value, sub)
        else:
            kwargs[name] = _coerce(value, hints[name], sub)
    return cls(**kwargs)


def method_table() -> dict[str, Any]:
    """`reidkit.methods.METHODS`, imported when first needed (the method modules import this one)."""
    from reidkit.methods import METHODS

    return METHODS


def _build_method(data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a `name`, got {data!r}")
    name = data.get("name", "ctl")
    methods = method_table()
    if name not in methods:
        raise ConfigError(f"{where}.name: unknown method {name!r}; valid: {sorted(methods)}")
    return _build(methods[name].config, data, where)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples as lists), for YAML and checkpoints."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key}: {p} is not a section")
        cur = nxt
    cur[parts[-1]] = value


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases: recipes never need them, and nested aliases ("billion laughs")
    would make dumping the resolved config explode."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            raise ConfigError(f"YAML alias *{anchor}: aliases are not supported in recipes; write values out")
        return super().compose_node(parent, index)


def _yaml_load(text: Any) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """`a.b=value` strings -> (key, YAML-parsed value)."""
    out = []
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override {o!r}: expected key.sub=value")
        key, raw = o.split("=", 1)
        out.append((key.strip(), _yaml_load(raw) if raw != "" else None))
    return out


def from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build a Config from a nested dict plus `key.sub=value` overrides (the caller's dict is not changed)."""
    data = copy.deepcopy(dict(data or {}))
    method_name = None
    for key, value in parse_overrides(overrides or []):
        if key == "method.name":
            method_name = value
        _set_dotted(data, key, value)
    if method_name is not None and isinstance(data.get("method"), dict):
        data["method"]["name"] = method_name
    return _build(Config, data, "")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a recipe YAML (only what differs from the defaults) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        with open(path, encoding="utf-8") as fh:
            try:
                loaded = _yaml_load(fh)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                raise ConfigError(f"{path}: not valid UTF-8 YAML ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = recipe_relative(loaded or {}, path)
    try:
        return from_dict(data, absolute_overrides(list(overrides or [])))
    except ConfigError as e:
        raise ConfigError(f"{path or '<defaults>'}: {e}") from None


def dump(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    with atomic_write(path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
