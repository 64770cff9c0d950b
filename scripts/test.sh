#!/usr/bin/env bash
# Sets everything up and runs every test: formatting and lints, native Rust tests, wasm tests
# in headless Chromium, and the Playwright end-to-end tests against the built site.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '\n\033[1m[test %4ds]\033[0m %s\n' "$SECONDS" "$*"; }

bash scripts/setup.sh

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (native and wasm32) -D warnings"
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --target wasm32-unknown-unknown --no-default-features --lib -- -D warnings

bash scripts/build-site.sh

log "native tests"
cargo test --release

log "wasm tests in headless Chromium"
wasm-pack test --headless --chrome --release crate --no-default-features

log "end-to-end tests (Playwright, Debian's Chromium)"
npx playwright test
log "all tests passed"
