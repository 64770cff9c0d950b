#!/usr/bin/env bash
# Idempotent set-up for a fresh machine of this kind (Debian, rustup, node/npm; registries only).
# Installs only what is missing or at the wrong version, so repeated runs (CI) are fast.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pin in crate/Cargo.toml
WASM_PACK_VERSION=0.15.1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages: headless Chromium + its driver, Mesa's software Vulkan (native wgpu)
need_apt=()
for pkg in chromium chromium-driver mesa-vulkan-drivers; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Rust: wasm target and the pinned wasm-bindgen CLI + wasm-pack
export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes ~7 min once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  log "cargo install wasm-pack $WASM_PACK_VERSION (takes ~6 min once)"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --force
fi

# --- JavaScript dependencies (exact versions from package-lock.json)
if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || ! cmp -s package-lock.json node_modules/.package-lock.json.copy; then
    log "npm ci"
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.package-lock.json.copy
  fi
fi
log "tools ready"
