#!/usr/bin/env bash
# The seeded end-to-end path of a source tree, for before/after comparisons of a refactor: the quickstart,
# CTL train -> eval -> index build -> search on the synthetic set, and short Cluster-Contrast + ISE, TextReID
# and FRPT (cub200_2011_subset, ../shared/data) trainings. Outputs (metrics.jsonl, test_metrics.json,
# search.json, printed tables) go to OUT; compare two OUT folders file by file.
#   bench/roundtrip.sh SRC_TREE OUT      e.g. a `git worktree` of the old commit, then of the new one
set -euo pipefail
SRC=$(cd "$1" && pwd); OUT=$(mkdir -p "$2" && cd "$2" && pwd)
PY=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
cd "$SRC"
export PYTHONPATH="$SRC/src"
rk() { "$PY" -c "import sys; from reidkit.cli import main; sys.argv[0] = 'reidkit'; main()" "$@"; }
rk quickstart --out "$OUT/qs" > "$OUT/qs.txt" 2>&1
rk train configs/synthetic/ctl.yaml optim.epochs=3 'optim.milestones=[2]' train.out_dir="$OUT/ctl" > "$OUT/ctl_train.txt" 2>&1
rk eval "$OUT/ctl/config.yaml" --ckpt "$OUT/ctl/best.pt" --centroids --rerank > "$OUT/ctl_eval.txt" 2>&1
DATA=$(grep -o -- '--data [^ ]*' "$OUT/qs.txt" | head -1 | cut -d' ' -f2)  # the quickstart's synthetic set
rk index build --ckpt "$OUT/ctl/best.pt" --data "$DATA" --format market1501 --out "$OUT/idx" > "$OUT/idx.txt" 2>&1
QUERY=$(find "$DATA/query" -name '*.jpg' | sort | head -1)
rk search --index "$OUT/idx" --ckpt "$OUT/ctl/best.pt" --image "$QUERY" -k 10 --json > "$OUT/search.json"
rk train configs/synthetic/cc_ise.yaml optim.epochs=2 optim.iters_per_epoch=8 train.out_dir="$OUT/cc" > "$OUT/cc_train.txt" 2>&1
rk train configs/synthetic/textreid.yaml optim.epochs=2 train.out_dir="$OUT/tr" > "$OUT/tr_train.txt" 2>&1
rk train configs/cub200_2011_subset/frpt_mbv2.yaml optim.epochs=1 train.out_dir="$OUT/frpt" > "$OUT/frpt_train.txt" 2>&1
echo "done: $OUT"
