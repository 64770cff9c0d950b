#!/usr/bin/env bash
# Mixed-precision search results (docs/results.md "Mixed-precision search", issue "search"):
# for MNIST and Fashion-MNIST at σ = 0.25 and 0.5, under budgets equal to the BOPs of uniform
# 4, 3 and 2.5 bits, every method (ARQ, HAQ, HAWQ-V3's ILP, Double Rounding's ILP, random,
# uniform) searches a policy on seeded training images; the exhaustive ground truth evaluates
# all 4⁸ policies by clean accuracy on GT_VAL training images once per model (the optimum
# under every budget is read from its trace); then every chosen policy, and each optimum, is
# evaluated on the test set: clean accuracy on all 10,000 images and CERTIFY with n = 10⁴,
# α = 0.001 on the first COUNT images. Resumable: a file that is already complete is kept.
# Phases: searches (both cores), then two lanes side by side (one thread each): the
# certifications, and the exhaustive enumerations. Prints the tables at the end
# (scripts/search-tables.py): one per model, then every method's test ACR side by side.
#
#   bash scripts/results-search.sh [MODEL...]
#   EPISODES=8 VAL=20 GT_VAL=20 COUNT=2 N=200 OUT=/tmp/s bash scripts/results-search.sh mnist-sigma0.25   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/bitsmooth}"
EPISODES="${EPISODES:-100}"   # policies each agent (and random search) evaluates
VAL="${VAL:-100}"             # validation images of the searches (training set, seed 0)
GT_VAL="${GT_VAL:-200}"       # validation images of the exhaustive ground truth (4⁸ × 200 forward passes, ~75 min of one core here)
COUNT="${COUNT:-500}"         # test images certified per policy
N="${N:-10000}"               # CERTIFY's estimation samples on the test set
OUT="${OUT:-results/search}"
METHODS=(arq haq hawq ilp random uniform)
BUDGETS=(4 3 2.5)             # uniform widths whose BOPs are the budgets
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mnist-sigma0.25 fashion-sigma0.25 mnist-sigma0.5 fashion-sigma0.5)
mkdir -p "$OUT"/{runs,traces,eval,certify,logs,models}
log() { printf '\033[1m[search %5ds]\033[0m %s\n' "$SECONDS" "$*"; }

source scripts/search-eval.sh   # budget, evaluate_policy

# The policy a finished search chose, comma-separated (weights and activations alike).
policy_of() { python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["policy"])))' "$1"; }

search_model() {
  # A copy of the shipped model that stores its Hutchinson traces (computed once, seeded), so
  # the ILPs do not estimate them again for every budget; the tensors are the shipped ones.
  local m=$1 model="$OUT/models/$1.safetensors"
  if [ ! -s "$OUT/models/$m.traces" ]; then
    log "$m: Hutchinson traces of every layer"
    cp "public/models/$m.safetensors" "$model"
    "$BIN" search --model "$model" --method ilp --bops 1 --seed 0 --store-traces --json \
      > "$OUT/models/$m.traces" 2> "$OUT/logs/$m-traces.log"
  fi
  for b in "${BUDGETS[@]}"; do
    local bops
    bops=$(budget "$m" "$b")
    for method in "${METHODS[@]}"; do
      local json="$OUT/runs/$m-b$b-$method.json"
      [ -s "$json" ] && continue
      log "$m: $method under the BOPs of uniform $b bits ($bops)"
      "$BIN" search --model "$model" --method "$method" --bops "$bops" --episodes "$EPISODES" \
        --val-size "$VAL" --seed 0 --trace "$OUT/traces/$m-b$b-$method.tsv" --json \
        > "$json.part" 2> "$OUT/logs/$m-b$b-$method.log"
      mv "$json.part" "$json"
    done
  done
}

certify_lane() {
  for m in "${MODELS[@]}"; do
    # the float model it was trained from, for reference (its ACR is in results/certify/)
    [ -s "$OUT/eval/$m-float.json" ] ||
      { "$BIN" eval --model "models/float/$m.safetensors" --json > "$OUT/eval/$m-float.json.part" 2>/dev/null &&
        mv "$OUT/eval/$m-float.json.part" "$OUT/eval/$m-float.json"; }
    for b in "${BUDGETS[@]}"; do
      for method in "${METHODS[@]}"; do
        evaluate_policy "$m" "$(policy_of "$OUT/runs/$m-b$b-$method.json")"
      done
    done
  done
  # the exhaustive optima, as their enumerations finish (this lane waits for them)
  for m in "${MODELS[@]}"; do
    while [ ! -s "$OUT/runs/$m-exhaustive.json" ]; do
      kill -0 "$lane" 2>/dev/null || { echo "the exhaustive lane stopped before $m" >&2; return 1; }
      sleep 30
    done
    for b in "${BUDGETS[@]}"; do
      evaluate_policy "$m" "$(python3 scripts/search-tables.py optimum "$OUT/traces/$m-exhaustive.tsv" "$(budget "$m" "$b")")"
    done
  done
}

exhaustive_lane() {
  for m in "${MODELS[@]}"; do
    local json="$OUT/runs/$m-exhaustive.json"
    [ -s "$json" ] && continue
    log "$m: all 4⁸ policies by clean accuracy on $GT_VAL training images"
    # the budget only picks the optimum printed in the JSON; the trace holds every policy
    "$BIN" search --model "public/models/$m.safetensors" --method exhaustive --reward accuracy \
      --bops 1 --val-size "$GT_VAL" --seed 0 --threads 1 --trace "$OUT/traces/$m-exhaustive.tsv" \
      --json > "$json.part" 2> "$OUT/logs/$m-exhaustive.log"
    mv "$json.part" "$json"
  done
}

for m in "${MODELS[@]}"; do search_model "$m"; done
exhaustive_lane &
lane=$!
certify_lane
wait "$lane"
python3 scripts/search-tables.py tables "$OUT" "${MODELS[@]}"
python3 scripts/search-tables.py summary "$OUT" "${MODELS[@]}"
