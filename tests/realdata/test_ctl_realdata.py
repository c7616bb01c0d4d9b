"""The ReID-pretrained CTL recipes on ../shared/data (marked realdata; run with `pytest -m realdata`):
a short fine-tuning must beat the untrained OSNet MSMT17 start clearly on the test split."""

import json
import os
from pathlib import Path

import pytest

from reidkit.app.train import train
from reidkit.config import load_config

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("REIDKIT_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights/osnet_x0_25_msmt17/osnet_x0_25_msmt17_torchreid_layout.pth"

pytestmark = pytest.mark.realdata


# recipe, data folder, untrained start's test mAP (bench/reference_points.py), the bar
CASES = [
    ("cuhk01/ctl_osnet", "cuhk01", 0.596, 0.65),
    ("cuhk03_detected/ctl_osnet", "cuhk03_detected", 0.141, 0.30),
]


@pytest.mark.parametrize(("recipe", "data", "start", "bar"), CASES, ids=[c[0] for c in CASES])
def test_osnet_recipe_beats_the_untrained_start(recipe, data, start, bar, tmp_path):
    root = SHARED / "data" / data
    if not root.is_dir() or not WEIGHTS.is_file():
        pytest.skip(f"{root} or {WEIGHTS} not found (research data and weights live in ../shared)")
    out = tmp_path / recipe.replace("/", "_")
    cfg = load_config(
        REPO / f"configs/{recipe}.yaml",
        [f"data.root={root}", f"model.weights={WEIGHTS}", f"train.out_dir={out}"],
    )
    metrics = train(cfg)
    (out / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
    assert metrics["image"]["mAP"] > bar > start, metrics
