import pytest
import yaml

from reidkit.config import ConfigError, dump, load_config
from reidkit.methods.ctl import CTLConfig


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

    from reidkit.app.quickstart import QUICKSTART
    from reidkit.config import from_dict

    yaml_cfg = load_config(Path(__file__).resolve().parents[3] / "configs/synthetic/ctl.yaml")
    qs = from_dict(QUICKSTART)
    assert dataclasses.replace(qs, train=yaml_cfg.train) == yaml_cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.epochs=0", r"optim.epochs: expected an integer >= 1, got 0"),
        ("optim.iters_per_epoch=-5", r"optim.iters_per_epoch: expected an integer >= 0, got -5"),
        ("data.test_batch_size=0", r"data.test_batch_size: expected an integer >= 1, got 0"),
        ("data.p=0", r"data.p: expected an integer >= 1, got 0"),
        ("optim.lr=0", r"optim.lr: expected a number > 0, got 0.0"),
        ("optim.lr=fast", r"optim.lr: expected a number, got 'fast'"),
    ],
)
def test_values_out_of_range_fail_when_the_config_is_built(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_exponent_without_a_dot_is_a_number(tmp_path):
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == pytest.approx(1e-3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  lr: 5e-4\n")
    assert load_config(recipe).optim.lr == pytest.approx(5e-4)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["data:", "  options:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 30):
        prev = f"*a{i - 1}"
        lines.append(f"    a{i}: &a{i} [{prev}, {prev}, {prev}, {prev}, {prev}]")
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: YAML alias \*a0: aliases are not supported"):
        load_config(recipe)


def test_non_utf8_recipe_names_the_file(tmp_path):
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("train:\n  out_dir: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not valid UTF-8 YAML"):
        load_config(recipe)


def test_overrides_do_not_leak_into_the_callers_dict():
    import copy

    from reidkit.app.quickstart import QUICKSTART
    from reidkit.config import from_dict

    before = copy.deepcopy(QUICKSTART)
    cfg = from_dict(QUICKSTART, ["optim.epochs=3", "data.p=4", "model.freeze_stages=0"])
    assert (cfg.optim.epochs, cfg.data.p) == (3, 4)
    assert QUICKSTART == before


def test_misspelt_key_suggests_the_nearest_one():
    with pytest.raises(
        ConfigError,
        match=r"optim\.epoch: did you mean optim\.epochs\? optim: unknown key\(s\) \['epoch'\]; valid keys: ",
    ):
        load_config(None, ["optim.epoch=3"])


def test_bad_device_lists_the_valid_ones():
    from reidkit.utils import resolve_device

    with pytest.raises(ValueError, match=r"device 'gpu' is not a device; valid: auto, cpu, cuda"):
        resolve_device("gpu")
    assert resolve_device("cpu").type == "cpu"


def test_tensorboard_without_the_package_fails_at_config_time(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'reidkit\[tensorboard\]'"):
        load_config(None, ["train.tensorboard=true"])
