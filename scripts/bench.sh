#!/usr/bin/env bash
# Prints the figures recorded in docs/benchmarks.md: native forward throughput (criterion),
# wasm throughput in headless Chromium (bench.html in one worker), and the wasm size.
# Assumes scripts/build-site.sh has run. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== wasm size"
wasm=$(ls dist/assets/bitsmooth_bg-*.wasm | head -n 1)
printf 'raw %d bytes, gzip -9 %d bytes\n' "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"

echo "== native (criterion: candle, the fast executor float and int8, the policy switch)"
cargo bench --bench forward -- --noplot 2>&1 | grep -E "^(noisy_forward|switch_policy)|time:|thrpt:|MACs per image"

echo "== wasm in headless Chromium: one worker's throughput, policy switch, scaling with workers"
# node, not npx: $! must be the server itself so that the trap ends it
node node_modules/.bin/vite preview --host 127.0.0.1 --port 4174 --strictPort > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:4174/ > /dev/null && break; sleep 0.2; done
for batch in 100 400; do
  BASE_URL=http://127.0.0.1:4174/ node scripts/bench-browser.mjs "$batch" 7
done

echo "== WebGPU in headless Chromium against the CPU wasm path (SwiftShader here: a GPU emulated on the CPU)"
BASE_URL=http://127.0.0.1:4174/ node scripts/bench-gpu-browser.mjs 4096 3
