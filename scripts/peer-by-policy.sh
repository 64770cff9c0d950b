#!/usr/bin/env bash
# The browser engine against onnxruntime-web at each uniform policy, both measured in the same
# round: ../shared/peer-bench's own onnxruntime-web bench (float bsnet8, 1 thread, batch 100),
# then bench.html's samplesPerSecByArithmetic (one worker, the shipped int8 model at
# w8a8/w4a4/w2a2) in the relaxed-SIMD build and in the SIMD128 build. Run peer-bench/run.sh
# once first (it installs onnxruntime-web) and build the site (scripts/build-site.sh).
# Usage: [ROUNDS=3] bash scripts/peer-by-policy.sh   → a markdown table of per-round ratios
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/peer-bench}
CACHE=${CACHE:-$HOME/.cache/peer-bench-light}
ROUNDS=${ROUNDS:-3}
out=$(mktemp -d)
node node_modules/.bin/vite preview --host 127.0.0.1 --port 4175 --strictPort > "$out/vite.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:4175/ > /dev/null && break; sleep 0.2; done
for r in $(seq "$ROUNDS"); do
  NODE_MODULES=$CACHE/web/node_modules MODEL=$PEER/bsnet8.onnx REF=$PEER/ref-float-head8.json \
    IMAGES=crate/tests/fixtures/mnist-test.bsds MIN_SECONDS=4 REPS=20 WARMUP=3 \
    node "$PEER/web_bench.mjs" 1 > "$out/ort-$r.json" 2>> "$out/ort.log"
  for simd in relaxed-simd simd128; do
    BASE_URL=http://127.0.0.1:4175/ SIMD=$([ $simd = simd128 ] && echo simd128 || true) \
      node scripts/bench-browser.mjs 100 9 > "$out/$simd-$r.json"
  done
  echo "round $r/$ROUNDS done" >&2
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def last_json(path):
    text = open(path).read()
    try:
        return json.loads(text)  # bench-browser.mjs: one indented object
    except json.JSONDecodeError:  # web_bench.mjs: one object per line
        return json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
rows = {}
for r in range(1, rounds + 1):
    ort = last_json(f"{out}/ort-{r}.json")["samples_per_s"]
    for simd in ("relaxed-simd", "simd128"):
        w = last_json(f"{out}/{simd}-{r}.json")["oneWorker"]
        assert w["wasmSimd"] == simd, w["wasmSimd"]
        for p in w["samplesPerSecByArithmetic"]:
            for path in ("integer", "integer-i16", "float"):
                if path == "integer-i16" and p["operands"] == "i16":
                    continue  # the same path as "integer"
                ops = {"integer": p["operands"], "integer-i16": "i16", "float": "f32"}[path]
                key = (p["policy"], simd, path if path == "float" else f"integer {ops}")
                rows.setdefault(key, []).append((p[path], p[path] / ort, ort))
print("| policy | build | path | samples/s (median) | onnxruntime-web samples/s | ratio, median (min–max) |")
print("|---|---|---|---|---|---|")
for (policy, simd, path), v in rows.items():
    ratios = [x[1] for x in v]
    print(f"| {policy} | {simd} | {path} | {statistics.median(x[0] for x in v):,.0f} | "
          f"{statistics.median(x[2] for x in v):,.0f} | **{statistics.median(ratios):.2f}×** "
          f"({min(ratios):.2f}–{max(ratios):.2f}) |")
PY
