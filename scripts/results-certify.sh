#!/usr/bin/env bash
# Certification results (docs/results.md, issue "certification"): for every shipped model,
# randomized smoothing at n0 = 100, n = 10,000, α = 0.001, seed 0 on the first COUNT test
# images (default 500) at w8a8 (the stored int8 model), w6a6, w4a4, w2a2; then IRS for the
# w4a4 and w2a2 policies from the w8a8 certification (--reference) at n_χ = 1 %, 5 %, 10 % of
# n. Resumable: a TSV that already holds COUNT rows is kept. Writes results/certify/*.tsv and
# prints the Markdown tables (scripts/certify-tables.py).
#
#   bash scripts/results-certify.sh [COUNT] [MODEL...]   e.g. bash scripts/results-certify.sh 500 mnist-sigma0.25
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/bitsmooth"
COUNT="${1:-500}"
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mnist-sigma0.25 fashion-sigma0.25 mnist-sigma0.5 fashion-sigma0.5 mnist-sigma1.0 fashion-sigma1.0)
N=10000
OUT=results/certify
mkdir -p "$OUT" logs

complete() { [ -s "$1" ] && [ "$(($(wc -l < "$1") - 1))" -ge "$COUNT" ]; }

for m in "${MODELS[@]}"; do
  model="public/models/$m.safetensors"
  common=(--model "$model" --n0 100 --n "$N" --alpha 0.001 --count "$COUNT" --seed 0)
  for b in 8 6 4 2; do
    tsv="$OUT/$m-w${b}a${b}.tsv"
    complete "$tsv" || "$BIN" certify "${common[@]}" --bits "$b" --out "$tsv" > "logs/certify-$m-w$b.log"
    tail -n 8 "logs/certify-$m-w$b.log" | head -n 1
  done
  for b in 4 2; do
    for chi in $((N / 100)) $((N / 20)) $((N / 10)); do
      tsv="$OUT/$m-w${b}a${b}-irs$chi.tsv"
      complete "$tsv" || "$BIN" certify "${common[@]}" --bits "$b" --incremental --n-chi "$chi" \
        --reference "$OUT/$m-w8a8.tsv" --out "$tsv" > "logs/certify-$m-w$b-irs$chi.log"
    done
  done
done
python3 scripts/certify-tables.py "$OUT"
