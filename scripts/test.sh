#!/usr/bin/env bash
# Sets everything up and runs every test: formatting and lints, native Rust tests, wasm tests
# in headless Chromium, and the Playwright end-to-end tests against the built site.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '\n\033[1m[test %4ds]\033[0m %s\n' "$SECONDS" "$*"; }

bash scripts/setup.sh

# Everything the test runners print also goes to $summary, to count the tests at the end.
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (native and wasm32) -D warnings"
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --target wasm32-unknown-unknown --no-default-features --lib -- -D warnings

bash scripts/build-site.sh

log "native tests"
cargo test --release 2>&1 | tee -a "$summary"

log "wasm tests in headless Chromium"
# The tests run in a dedicated worker (crate/tests/web.rs); the engine's search test still
# takes a while on a loaded machine, and the runner's default 20 s for a test would end it.
WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
  wasm-pack test --headless --chrome --release crate --no-default-features 2>&1 | tee -a "$summary"

log "wasm tests of the relaxed-SIMD build in headless Chromium (its i8 integer kernels)"
# The build pages load where the browser has relaxed SIMD (scripts/build-site.sh): the same
# file's tests, compiled with it, in its own target directory.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/wasm-relaxed" \
  WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
  wasm-pack test --headless --chrome --release crate --no-default-features --test web 2>&1 | tee -a "$summary"

log "end-to-end tests (Playwright, Debian's Chromium)"
npx playwright test 2>&1 | tee -a "$summary"

rust=$(grep -oE 'test result: ok\. [0-9]+ passed' "$summary" | awk '{s += $4} END {print s + 0}')
e2e=$(grep -oE '^ *[0-9]+ passed' "$summary" | awk '{s += $1} END {print s + 0}')
log "all tests passed: $rust Rust (native + wasm) and $e2e end-to-end"
echo "tests: $((rust + e2e)) passed, 0 failed"
