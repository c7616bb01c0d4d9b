"""Paths in recipes: relative data.root / model.weights resolve against the recipe (its repository when it is
in a configs/ folder), not the current directory; command-line paths become absolute; a folder written by
`reidkit synth --out DIR` is read as it is with data.root=DIR."""

from __future__ import annotations

from pathlib import Path

from reidkit.app.build import load_split
from reidkit.config import DataConfig, load_config
from reidkit.data.synthetic import SyntheticConfig, write_synthetic

REPO = Path(__file__).resolve().parents[3]


def test_repo_recipes_resolve_against_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anywhere but the repository
    cfg = load_config(REPO / "configs/cub200_2011_subset/frpt_mbv2.yaml")
    assert cfg.data.root == str(REPO / "../shared/data/cub200_2011_subset")


def test_own_recipes_resolve_against_their_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "crops").mkdir(parents=True)
    recipe = project / "mine.yaml"
    recipe.write_text("data: {format: folder, root: crops}\nmodel: {weights: weights/reid.pth}\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(recipe)
    assert cfg.data.root == str(project / "crops") and cfg.model.weights == str(project / "weights/reid.pth")
    assert load_config(recipe, ["model.weights=imagenet"]).model.weights == "imagenet"


def test_command_line_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["data.root=my data", "model.weights=w.pth"])
    assert cfg.data.root == str(tmp_path / "my data") and cfg.model.weights == str(tmp_path / "w.pth")


def test_a_folder_written_by_synth_is_read_as_it_is(tmp_path):
    out = write_synthetic(tmp_path / "synth", SyntheticConfig(num_ids=6, seed=3))
    split = load_split(DataConfig(format="synthetic", root=str(out)))
    assert split.train and all(r.path.startswith(str(out)) for r in split.train + split.query)
