import pytest
import yaml

from reidkit.config import ConfigError, CTLConfig, dump, load_config


def test_defaults_and_overrides(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data:\n  p: 8\nmethod:\n  name: ctl\n  margin: 0.3\n")
    cfg = load_config(p, ["optim.lr=0.001", "optim.milestones=[5,9]", "model.weights=null"])
    assert cfg.data.p == 8 and cfg.data.k == 4
    assert isinstance(cfg.method, CTLConfig) and cfg.method.margin == 0.3
    assert cfg.optim.lr == 0.001 and cfg.optim.milestones == (5, 9)
    out = tmp_path / "dump.yaml"
    dump(cfg, out)
    again = load_config(out)
    assert again == cfg
    assert yaml.safe_load(out.read_text())["optim"]["milestones"] == [5, 9]


def test_unknown_key_lists_valid(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data:\n  batchsize: 3\n")
    with pytest.raises(
        ConfigError, match=r"r.yaml.*data: unknown key\(s\) \['batchsize'\]; valid keys: .*'p'"
    ):
        load_config(p)


def test_wrong_type_and_unknown_method(tmp_path):
    with pytest.raises(ConfigError, match="data.p: expected an integer"):
        load_config(None, ["data.p=abc"])
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; valid: \[.*'ctl'"):
        load_config(None, ["method.name=nope"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_quickstart_recipe_matches_its_yaml():
    """`reidkit quickstart` runs what configs/synthetic/ctl.yaml says (apart from where it writes)."""
    import dataclasses
    from pathlib import Path

    from reidkit.config import from_dict
    from reidkit.runner import QUICKSTART

    yaml_cfg = load_config(Path(__file__).resolve().parents[3] / "configs/synthetic/ctl.yaml")
    qs = from_dict(QUICKSTART)
    assert dataclasses.replace(qs, train=yaml_cfg.train) == yaml_cfg
