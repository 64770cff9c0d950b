#!/usr/bin/env bash
# Certification results (docs/results.md, issue "certification"): for every shipped model,
# randomized smoothing at n0 = 100, n = 10,000, α = 0.001, seed 0 on the first COUNT test
# images (default 500) at w8a8 (the stored int8 model), w6a6, w4a4, w2a2; then, for w6a6, w4a4
# and w2a2 at n_χ = 1 %, 5 %, 10 % of n, IRS from the w8a8 certification (--reference) and the
# baseline IRS must beat, certification from scratch with n = n_χ samples; last, the float
# model it was trained from (models/float). Two models at a time, one thread each. Resumable:
# a TSV that already holds COUNT rows is kept. Writes results/certify/*.tsv and prints the
# Markdown tables (scripts/certify-tables.py).
#
#   bash scripts/results-certify.sh [COUNT] [MODEL...]   e.g. bash scripts/results-certify.sh 500 mnist-sigma0.25
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/bitsmooth}"
COUNT="${1:-500}"
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mnist-sigma0.25 fashion-sigma0.25 mnist-sigma0.5 fashion-sigma0.5 mnist-sigma1.0 fashion-sigma1.0)
N=10000
OUT=results/certify
mkdir -p "$OUT" logs

complete() { [ -s "$1" ] && [ "$(($(wc -l < "$1") - 1))" -ge "$COUNT" ]; }
# IRS reuses the w8a8 run only with its settings file (<tsv>.json), so a reference without
# one is certified again.
complete_reference() { complete "$1" && [ -s "$1.json" ]; }

# One model's runs, one executor thread: two models run side by side (2 cores), which gives
# more samples per second than one two-threaded run and keeps every run's timing alike.
certify_model() {
  local m=$1
  local model=(--model "public/models/$m.safetensors")
  local base=(--n0 100 --alpha 0.001 --count "$COUNT" --seed 0 --threads 1)
  local settings=("${base[@]}" --n "$N")
  tsv="$OUT/$m-w8a8.tsv"
  complete_reference "$tsv" || "$BIN" certify "${model[@]}" "${settings[@]}" --bits 8 --out "$tsv" > "logs/certify-$m-w8.log"
  for b in 6 4 2; do
    tsv="$OUT/$m-w${b}a${b}.tsv"
    complete "$tsv" || "$BIN" certify "${model[@]}" "${settings[@]}" --bits "$b" --out "$tsv" > "logs/certify-$m-w$b.log"
  done
  for b in 6 4 2; do
    for chi in $((N / 100)) $((N / 20)) $((N / 10)); do
      tsv="$OUT/$m-w${b}a${b}-irs$chi.tsv"
      complete "$tsv" || "$BIN" certify "${model[@]}" "${settings[@]}" --bits "$b" --incremental --n-chi "$chi" \
        --reference "$OUT/$m-w8a8.tsv" --out "$tsv" > "logs/certify-$m-w$b-irs$chi.log"
      tsv="$OUT/$m-w${b}a${b}-n$chi.tsv"
      complete "$tsv" || "$BIN" certify "${model[@]}" "${base[@]}" --n "$chi" --bits "$b" --out "$tsv" \
        > "logs/certify-$m-w$b-n$chi.log"
    done
  done
  # the float model the int8 one was trained from, for comparison
  tsv="$OUT/$m-float.tsv"
  complete "$tsv" || "$BIN" certify --model "models/float/$m.safetensors" "${settings[@]}" --out "$tsv" > "logs/certify-$m-float.log"
  echo "done: $m"
}

running=0
for m in "${MODELS[@]}"; do
  if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
  certify_model "$m" &
  running=$((running + 1))
done
wait
python3 scripts/certify-tables.py "$OUT"
