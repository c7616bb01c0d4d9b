"""The TextReID recipes parse into TextReIDConfig (strict config) and build a method."""

from __future__ import annotations

from pathlib import Path

import pytest

from reidkit.config import ConfigError, load_config
from reidkit.data.text import random_word_table
from reidkit.methods.textreid import TextReIDConfig, build_textreid

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
RECIPES = ["cuhkpedes/textreid.yaml", "synthetic/textreid.yaml", "cuhk_pedes_cuhk01/textreid.yaml"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_parses(recipe: str) -> None:
    cfg = load_config(CONFIGS / recipe)
    assert isinstance(cfg.method, TextReIDConfig) and cfg.method.word_table == "minilm"
    assert cfg.method.queue_size > 0 and cfg.eval.rerank


def test_paper_recipe_keeps_paper_settings() -> None:
    cfg = load_config(CONFIGS / "cuhkpedes/textreid.yaml")
    m = cfg.method
    assert (cfg.data.height, cfg.data.width, cfg.data.p * cfg.data.k, cfg.data.k) == (384, 128, 128, 4)
    assert (m.gru_hidden, m.queue_size, m.momentum, m.temperature, cfg.optim.epochs) == (
        512,
        2048,
        0.999,
        0.07,
        80,
    )


def test_overrides_and_unknown_keys() -> None:
    cfg = load_config(
        CONFIGS / "synthetic/textreid.yaml", ["method.queue_size=0", "method.word_table=random"]
    )
    assert cfg.method.queue_size == 0
    method = build_textreid(cfg.method, 5, random_word_table(30, 8), backbone="mobilenetv2", weights=None)
    assert method.text_q.embed.weight.requires_grad and method.image_queue.size == 0
    with pytest.raises(ConfigError, match="queue_len"):
        load_config(CONFIGS / "synthetic/textreid.yaml", ["method.queue_len=3"])
