"""The method seam: METHODS lists every method once, each config class holds the only defaults, every method
builds from a config through the table, and removed config keys say why."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from torch import nn

from reidkit.app.build import build_method
from reidkit.config import REMOVED_KEYS, ConfigError, from_dict, load_config
from reidkit.methods import METHODS, Method
from reidkit.methods.ctl import CTL
from reidkit.methods.textreid import TextReID
from reidkit.models.freeze import KeepsFrozen
from reidkit.types import Record


def test_the_table_lists_the_four_methods_under_their_config_names():
    assert sorted(METHODS) == ["cluster_contrast", "ctl", "frpt", "textreid"]
    for name, entry in METHODS.items():
        assert entry.config().name == name
        assert isinstance(load_config(None, [f"method.name={name}"]).method, entry.config)


@pytest.mark.parametrize("cls", [CTL, TextReID])
def test_constructor_defaults_are_the_config_defaults(cls):
    config = METHODS["ctl" if cls is CTL else "textreid"].config()
    params = inspect.signature(cls).parameters
    shared = [f.name for f in dataclasses.fields(config) if f.name in params]
    assert len(shared) >= 9
    for name in shared:
        assert params[name].default == getattr(config, name), name


@pytest.mark.parametrize("key", sorted(REMOVED_KEYS))
def test_removed_keys_say_they_were_removed(key):
    with pytest.raises(ConfigError, match=f"{key} was removed"):
        from_dict({}, [f"{key}=true"])


def _records() -> list[Record]:
    return [Record(f"x{i}.jpg", i % 3, i % 2, text=f"a person in red {i % 3}") for i in range(12)]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_builds_from_a_config_through_the_table(name, tmp_path):
    extra = {
        "ctl": [],
        "cluster_contrast": [],
        "textreid": ["method.word_table=random", "method.random_dim=8", "method.gru_hidden=8"],
        "frpt": ["method.spp_hidden=4"],
    }[name]
    base = [f"method.name={name}", "model.backbone=resnet18", f"train.out_dir={tmp_path}"]
    cfg = from_dict({}, [*base, *extra])
    num_classes = 0 if name == "cluster_contrast" else 3
    method = build_method(cfg, num_classes, weights=None, records=_records())
    assert isinstance(method, Method) and "image" in method.embedders()
    assert (method.tokenizer() is not None) == (name == "textreid")
    assert (method.visual_prompt() is not None) == (name == "frpt")
    if name == "textreid":
        assert (tmp_path / "vocab.json").is_file()  # the method keeps its vocabulary beside its checkpoints


class _Net(KeepsFrozen):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)


def test_frozen_parts_stay_in_eval_mode_and_get_no_gradients():
    net = _Net()
    net.keep_frozen(net.stem)
    net.keep_frozen(net.bn, train_weights=True)  # frozen statistics, trainable affine weights
    for mode in (True, False, True):
        net.train(mode)
        assert net.training == mode and net.head.training == mode
        assert not net.stem.training and not net.bn.training
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert all(p.requires_grad for p in net.bn.parameters())
    before = net.bn.running_mean.clone()
    net.bn(torch.randn(2, 4, 5, 5) + 3.0)
    assert torch.equal(net.bn.running_mean, before)


def test_configs_written_before_the_removal_still_load():
    cfg = from_dict({"eval": {"metric": "cosine", "centroids": False, "every": 3}})  # an older run's config
    assert cfg.eval.every == 3
