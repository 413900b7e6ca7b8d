#!/usr/bin/env bash
# Quick start: install what is missing, build rgate (release), and serve with defaults.
# Extra arguments go to `rgate serve`, e.g. scripts/serve.sh --text-port 9000 --workers 8
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
binary=$(scripts/build-release.sh | tail -n 1)
exec "$binary" serve "$@"
