"""Strict YAML -> frozen dataclasses, `key.sub=value` overrides, and dump().

A recipe lists only what differs from the defaults. Unknown keys and wrong types raise with the valid choices.
Method-specific settings live under `method:`; `method.name` picks the dataclass from METHOD_CONFIGS.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.utils import atomic_write


def _at_least(cfg: Any, section: str, bounds: dict[str, int]) -> None:
    """Raise a ConfigError naming the first field below its lower bound (checked when the config is built,
    so a bad value fails before any work, not after training)."""
    for name, low in bounds.items():
        value = getattr(cfg, name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < low:
            raise ConfigError(f"{section}.{name}: expected an integer >= {low}, got {value}")


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
    color_jitter: float = 0.0
    workers: int = 2
    test_batch_size: int = 128
    val_ids: int = 0  # identities carved from *training* ids for model selection (0 = none)
    few_shot: int = 0  # keep at most N images per training identity/class (0 = all)
    synthetic_ids: int = 200
    synthetic_seed: int = 0

    def __post_init__(self) -> None:
        _at_least(self, "data", {"height": 1, "width": 1, "p": 1, "k": 1, "workers": 0, "test_batch_size": 1})
        _at_least(self, "data", {"val_ids": 0, "few_shot": 0, "pad": 0})


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


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    epochs: int = 120
    iters_per_epoch: int = 0  # 0 = one pass of the sampler
    warmup_epochs: int = 10
    warmup_factor: float = 0.01
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.1
    grad_clip: float | None = None
    amp: bool = True  # used only on CUDA

    def __post_init__(self) -> None:
        _at_least(self, "optim", {"epochs": 1, "iters_per_epoch": 0, "warmup_epochs": 0})
        if not self.lr > 0:
            raise ConfigError(f"optim.lr: expected a number > 0, got {self.lr}")


@dataclass(frozen=True)
class EvalConfig:
    every: int = 10  # evaluate on the validation ids every N epochs (0 = only at the end)
    centroids: bool = False
    rerank: bool = False
    rerank_k1: int = 20  # k-reciprocal re-ranking: k1, k2, lambda (Zhong et al.'s defaults)
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    metric: str = "cosine"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    out_dir: str = "runs/default"
    device: str = "auto"
    resume: bool = False
    tensorboard: bool = False
    log_every: int = 20
    max_steps: int = 0  # stop after N optimiser steps in total (0 = no limit); for tests and smoke runs


CTL_FORMS = ("reference", "per_image")


@dataclass(frozen=True)
class CTLConfig:
    """Supervised BNNeck baseline (+ Centroid Triplet Loss)."""

    name: str = "ctl"
    centroid_triplet: bool = True
    # reference: the centroids-reid training code (per image slot, centroids as anchors, images as negatives);
    # per_image: reidkit's first form (image anchors vs leave-one-out and full centroids only)
    ctl_form: str = "reference"
    margin: float = 0.5
    label_smoothing: float = 0.1
    center_weight: float = 5e-4
    center_lr: float = 0.5
    triplet_weight: float = 1.0
    ce_weight: float = 1.0
    ctl_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.ctl_form not in CTL_FORMS:
            raise ConfigError(f"method.ctl_form: unknown form {self.ctl_form!r}; valid: {list(CTL_FORMS)}")


@dataclass(frozen=True)
class ClusterContrastConfig:
    """Cluster-Contrast (+ ISE) hyper-parameters; defaults from the papers' Market-1501 settings."""

    name: str = "cluster_contrast"
    eps: float = 0.6  # DBSCAN radius on the Jaccard distance (0.4 in the ISE Market recipe)
    min_samples: int = 4
    k1: int = 30  # k-reciprocal neighbours of the Jaccard distance
    k2: int = 6  # query expansion of the Jaccard distance
    temperature: float = 0.05  # InfoNCE against the cluster memory
    momentum: float = 0.2  # memory: c <- m c + (1 - m) f
    memory_update: str = "hard"  # hard (least similar batch sample) | mean (batch mean)
    ise: bool = False  # Implicit Sample Extension
    ise_k: int = 1  # nearest other clusters per sample (one support each)
    lambda0: float = 1.0  # final degree lambda_T = lambda0 / 2
    lambda_schedule: str = "log"  # log (reference code) | linear
    lp_temperature: float = 0.6  # label-preserving loss
    lp_weight: float = 0.1  # beta
    update_with_supports: bool = True  # the reference updates the memory with the support samples too


FRPT_VARIANTS = ("frpt", "linear_probe", "finetune", "no_spp", "no_cah")


@dataclass(frozen=True)
class FRPTConfig:
    """FRPT and its baselines; every field except `name` is a keyword of `FRPT.__init__`."""

    name: str = "frpt"
    variant: str = "frpt"  # frpt | linear_probe | finetune | no_spp | no_cah
    label_smoothing: float = 0.1
    cah_reduction: int = 8  # SE reduction r of the awareness head
    spp_hidden: int = 32  # channels of the content-parsing branch
    spp_kernel: int = 7  # taps per side of the content-aware kernel
    spp_receptive_field: float = 0.3  # the kernel spans at least this fraction of the feature width
    spp_sigma: float = 0.25  # std of the Gaussian distance kernel, in [-1, 1] image units
    spp_logit_bound: float = 10.0  # soft bound on the projection logits (max/min of A <= e^(2 bound))
    backbone_lr_scale: float = 0.1  # finetune only: backbone lr = lr * this
    spp_lr_scale: float = 10.0  # prompt lr = lr * this (its signal reaches it through the whole backbone)

    def __post_init__(self) -> None:
        if self.variant not in FRPT_VARIANTS:
            raise ConfigError(
                f"method.variant: unknown FRPT variant {self.variant!r}; valid: {list(FRPT_VARIANTS)}"
            )


@dataclass(frozen=True)
class TextReIDConfig:
    """TextReID settings. The word-table fields are read by the runner (vocabulary + table), the rest by
    `build_textreid`."""

    name: str = "textreid"
    word_table: str = "minilm"  # minilm | clip | random (see reidkit.data.text.WORD_TABLES)
    train_table: bool = False  # fine-tune the word table; "random" tables are always trained
    random_dim: int = 384  # width of a "random" table
    clip_checkpoint: str | None = None  # local open_clip checkpoint for word_table=clip
    clip_model: str = "ViT-B-32"
    min_count: int = 1  # vocabulary: words seen fewer times in the training captions become <unk>
    table_cache: str | None = None  # folder for cached word tables (None: the runner's cache folder)
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


METHOD_CONFIGS: dict[str, type] = {
    "textreid": TextReIDConfig,
    "ctl": CTLConfig,
    "cluster_contrast": ClusterContrastConfig,
    "frpt": FRPTConfig,
}


@dataclass(frozen=True)
class Config:
    """A whole run: data, model, method, optimisation, evaluation, training."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: Any = field(default_factory=CTLConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ConfigError(ValueError):
    """A config key, name or value that does not fit the schema."""


def register_method_config(cls: type) -> type:
    """Add a method's config dataclass (its `name` default is the key)."""
    METHOD_CONFIGS[cls.name] = cls  # type: ignore[attr-defined]
    return cls


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


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        near = {k: difflib.get_close_matches(str(k), names, n=1) for k in unknown}
        hint = "".join(f"; {k}: did you mean {m[0]!r}?" for k, m in near.items() if m)
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {names}{hint}")
    kwargs = {}
    for name, value in data.items():
        sub = f"{where}.{name}" if where else name
        if cls is Config and name == "method":
            kwargs[name] = _build_method(value, sub)
        else:
            kwargs[name] = _coerce(value, hints[name], sub)
    return cls(**kwargs)


def _build_method(data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a `name`, got {data!r}")
    name = data.get("name", "ctl")
    if name not in METHOD_CONFIGS:
        raise ConfigError(f"{where}.name: unknown method {name!r}; valid: {sorted(METHOD_CONFIGS)}")
    return _build(METHOD_CONFIGS[name], data, where)


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
        data = loaded or {}
    try:
        return from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path or '<defaults>'}: {e}") from None


def dump(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    with atomic_write(path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
