#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds, and runs the Swift test suites
# (which start real `rgate serve` processes and drive them with real clients).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests 2>&1 | { grep -Ev '^warning: prohibited flag' || true; } >&2
swift test --skip-build 2>&1 | tee .build/test-output.txt
# Real Rserve clients (pyRserve, RSclient) against rgate and, side by side, a real Rserve.
venv=$(scripts/python-env.sh | tail -n 1)
RGATE_BIN="$PWD/.build/debug/rgate" "$venv/bin/python" -m pytest Tests/clients -q
