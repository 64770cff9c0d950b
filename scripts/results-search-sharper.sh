#!/usr/bin/env bash
# A sharper ground truth for the mixed-precision search (docs/results.md): the 4⁸ enumeration
# of scripts/results-search.sh scores policies by clean accuracy on 200 training images, and
# on MNIST that saturates (hundreds of policies tie at 100 %). This one enumerates again on
# GT_VAL (default 500) training images of the same seed, then certifies each budget's new
# optimum on the test set like every other pick (n = 10⁴, α = 0.001, COUNT images), and prints
# every method's regret on it (scripts/search-tables.py regrets). Resumable.
#
#   bash scripts/results-search-sharper.sh mnist-sigma0.25 mnist-sigma0.5
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/bitsmooth}"
GT_VAL="${GT_VAL:-500}"
COUNT="${COUNT:-500}"
N="${N:-10000}"
OUT="${OUT:-results/search}"
BUDGETS=(4 3 2.5)             # uniform widths whose BOPs are the budgets
mkdir -p "$OUT"/{runs,traces,eval,certify,logs}
log() { printf '\033[1m[sharper %5ds]\033[0m %s\n' "$SECONDS" "$*"; }
source scripts/search-eval.sh   # budget, evaluate_policy

for m in "$@"; do
  model="public/models/$m.safetensors"
  name="$m-exhaustive-val$GT_VAL"
  if [ ! -s "$OUT/runs/$name.json" ]; then
    log "$m: all 4⁸ policies by clean accuracy on $GT_VAL training images"
    "$BIN" search --model "$model" --method exhaustive --reward accuracy --bops 1 --val-size "$GT_VAL" \
      --seed 0 --threads 1 --trace "$OUT/traces/$name.tsv" --json > "$OUT/runs/$name.json.part" \
      2> "$OUT/logs/$name.log"
    mv "$OUT/runs/$name.json.part" "$OUT/runs/$name.json"
  fi
  for b in "${BUDGETS[@]}"; do
    evaluate_policy "$m" "$(python3 scripts/search-tables.py optimum "$OUT/traces/$name.tsv" "$(budget "$m" "$b")")"
  done
  python3 scripts/search-tables.py regrets "$OUT" "$m" "$OUT/traces/$name.tsv"
done
