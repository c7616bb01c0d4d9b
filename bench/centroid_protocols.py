"""The two camera-aware centroid protocols side by side (issue 18): ours vs centroids-reid's definition.

    python bench/centroid_protocols.py [--data ../shared/data] [--sets synthetic cuhk03_detected cuhk01]

Rows: Market-sized synthetic features (bench/_data.py, seeds 0-2) and the OSNet x0.25 MSMT17 ReID weights
on the real test splits. Columns: per image, per-pid centroids, camera-aware centroids (ours: the query's own
pid averaged over its other-camera gallery images, every other pid, distractors included, over all its
images) and camera-aware centroids as centroids-reid builds them (camera_aware_reference: one centroid per
queried pid and query camera, pids without queries have none). Prints a table, writes
bench/results/centroid_protocols.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _data import market_like  # noqa: E402
from reference_points import OSNET, osnet_features  # noqa: E402

from reidkit.evaluation import evaluate  # noqa: E402

MODES = {
    "image": False,
    "centroid": True,
    "camera (ours)": "camera",
    "camera_aware_reference": "camera_aware_reference",
}


def rows_of(q, g) -> dict[str, dict[str, float]]:
    out = {}
    for name, mode in MODES.items():
        r = evaluate(q, g, centroids=mode)
        out[name] = {"mAP": r.mAP, "R1": float(r.cmc[0]), "valid_queries": r.num_valid_queries}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--weights", type=Path, default=OSNET)
    ap.add_argument("--sets", nargs="+", default=["synthetic", "cuhk03_detected", "cuhk01"])
    args = ap.parse_args()
    results = {}
    for name in args.sets:
        if name == "synthetic":
            for seed in (0, 1, 2):
                results[f"synthetic Market-sized, seed {seed}"] = rows_of(*market_like(seed=seed))
        else:
            results[f"{name}, OSNet x0.25 MSMT17"] = rows_of(*osnet_features(name, args.data, args.weights))
    print(f"{'features':38} " + " ".join(f"{m + ' mAP / R1':>34}" for m in MODES))
    for feats, rows in results.items():
        cells = " ".join(f"{rows[m]['mAP']:>24.4f} / {rows[m]['R1']:.4f}" for m in MODES)
        print(f"{feats:38} {cells}")
    out = HERE / "results" / "centroid_protocols.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
