#!/usr/bin/env bash
# Sets everything up, builds, and serves the playground on http://127.0.0.1:4173/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-site.sh
echo
echo "bitsmooth playground: http://127.0.0.1:${PORT:-4173}/   (Ctrl-C stops the server)"
exec npx vite preview --host 127.0.0.1 --port "${PORT:-4173}" --strictPort
