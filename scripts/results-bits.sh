#!/usr/bin/env bash
# Double Rounding results (docs/results.md, issue "Double Rounding"): full-test-set accuracy
# at w8a8, w6a6, w4a4, w2a2 for MNIST and Fashion-MNIST at σ = 0.25 of
#   (a) the int8 multi-bit model with ALRS (public/models/multibit: shipped before the
#       supernets, trained with four updates per batch),
#   (b) the same training without ALRS,
#   (c) one LSQ model per bit-width, each trained alone with the same budget per width,
#   (d) post-training quantization of the float model (max-abs weight scales, activation
#       ranges calibrated on 256 noisy training images),
# and the float model itself. (b) and (c) start from the same float model with the same
# settings as (a): one pass over the first 20,000 training images, lr 1e-3, scale lr 1e-3.
# The committed results/bits-*.tsv were made at commit 6cac99c, before the single-update step:
# run now, (b) trains with the corrected step ((c), one width each, is the same either way;
# docs/results.md has both ALRS ablations).
# Writes results/bits-<dataset>.tsv and prints a Markdown table. Needs `prepare-data` and a
# release build; the trained ablation models go to results/models/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/bitsmooth"
export RAYON_NUM_THREADS=1
SETTINGS=(--epochs 1 --limit 20000 --lr 1e-3 --scale-lr 1e-3 --seed 0)
mkdir -p results/models logs

train_ablations() {
  local ds=$1 init="models/float/$1-sigma0.25.safetensors"
  [ -s "results/models/$ds-noalrs.safetensors" ] ||
    "$BIN" train --dataset "$ds" --sigma 0.25 --bits 8,6,4,2 --no-alrs --init "$init" "${SETTINGS[@]}" \
      --out "results/models/$ds-noalrs.safetensors"
  for b in 8 6 4 2; do
    [ -s "results/models/$ds-lsq$b.safetensors" ] ||
      "$BIN" train --dataset "$ds" --sigma 0.25 --bits "$b" --init "$init" "${SETTINGS[@]}" \
        --out "results/models/$ds-lsq$b.safetensors"
  done
}

accuracy() { "$BIN" eval --json "$@" | python3 -c 'import json,sys; print("%.2f" % (100*json.load(sys.stdin)["accuracy"]))'; }

table() {
  local ds=$1 out="results/bits-$1.tsv" float="models/float/$1-sigma0.25.safetensors"
  printf 'method\tw8a8\tw6a6\tw4a4\tw2a2\n' > "$out"
  local f; f=$(accuracy --model "$float")
  printf 'float\t%s\t%s\t%s\t%s\n' "$f" "$f" "$f" "$f" >> "$out"
  row() {
    local name=$1; shift
    local cells=()
    for b in 8 6 4 2; do cells+=("$("$@" "$b")"); done
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "${cells[@]}" >> "$out"
  }
  multibit() { accuracy --model "$1" --bits "$2"; }
  separate() { accuracy --model "results/models/$ds-lsq$1.safetensors" --bits "$1"; }
  ptq() { accuracy --model "$float" --bits "$1"; }
  row "(a) multi-bit int8, ALRS" multibit "public/models/multibit/$ds-sigma0.25.safetensors"
  row "(b) multi-bit int8, no ALRS" multibit "results/models/$ds-noalrs.safetensors"
  row "(c) separate LSQ per width" separate
  row "(d) PTQ of the float model" ptq
  echo "### $ds (σ = 0.25), clean accuracy on the full test set (%)"
  echo
  python3 - "$out" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
print("| " + " | ".join(rows[0]) + " |")
print("|" + "---|" * len(rows[0]))
for r in rows[1:]:
    print("| " + " | ".join(r) + " |")
PY
  echo
}

if [ "${1:-}" != tables ]; then
  train_ablations mnist > logs/ablation-mnist.log 2>&1 &
  a=$!
  train_ablations fashion > logs/ablation-fashion.log 2>&1 &
  b=$!
  wait "$a"; wait "$b"
fi
table mnist
table fashion
