# Shared by scripts/results-search.sh and scripts/results-search-sharper.sh (sourced), so that
# every pick of either is measured with the same budgets and the same test-set settings.
# Needs BIN, OUT, COUNT, N and a log function from the caller.

# BOPs of uniform width b: the stem reads the float image (32 bits), every other layer reads
# b-bit activations with b-bit weights (DESIGN §2); from the layer MACs that `eval` reports.
budget() {
  "$BIN" eval --model "public/models/$1.safetensors" --count 1 --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); b=float(sys.argv[1]); s=d["layers"][0]["macs"]; print(round(s*32*b + (d["macs"]-s)*b*b))' "$2"
}

# One policy on the test set: clean accuracy (all images) and CERTIFY (first COUNT images).
# Resumable: a complete file is kept.
evaluate_policy() {
  local m=$1 p=$2 key
  key="$m-${p//,/}"
  local model="public/models/$m.safetensors"
  [ -s "$OUT/eval/$key.json" ] ||
    { "$BIN" eval --model "$model" --policy "$p" --act-bits "$p" --json > "$OUT/eval/$key.json.part" 2>/dev/null &&
      mv "$OUT/eval/$key.json.part" "$OUT/eval/$key.json"; }
  local tsv="$OUT/certify/$key.tsv"
  if ! { [ -s "$tsv" ] && [ "$(($(wc -l < "$tsv") - 1))" -ge "$COUNT" ]; }; then
    log "$m: certifying $p"
    "$BIN" certify --model "$model" --policy "$p" --act-bits "$p" --n0 100 --n "$N" --alpha 0.001 \
      --count "$COUNT" --seed 0 --threads 1 --out "$tsv" > "$OUT/logs/certify-$key.log"
  fi
}
