#!/usr/bin/env bash
# Builds the release rgate binary the way it is served and benchmarked, and prints its path
# on the last line of stdout (build output goes to stderr).
#
#   scripts/build-release.sh                        # in .build (the default scratch path)
#   scripts/build-release.sh --scratch-path .build-rel
#
# The Swift runtime and Foundation are linked statically (--static-swift-stdlib): every
# session is a fork of the worker process, and each fork copies, and each exit tears down,
# every memory mapping; the ~14 Swift shared libraries are ~60 of the worker's ~270 mappings.
# Measured with Benchmarks/qap-vs-rserve.sh (P2, fresh QAP1 sessions, two rounds each):
# 2.52-2.57 ms of CPU per session instead of 2.80-2.91 ms, 681-697 instead of 602-631
# sessions/s. The binary is larger (~130 MB instead of ~65 MB, most of it ICU data, which is
# file-backed and shared). Debug builds (the tests) keep the shared runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
# rgate (the supervisor and CLI) and rgate-worker (the zygote and sessions: the only one that
# links R), side by side in the same directory, where rgate looks for its worker.
for product in rgate rgate-worker; do
  swift build -c release --product "$product" --static-swift-stdlib "$@" 2>&1 | { grep -Ev '^warning: prohibited flag' || true; } >&2
done
echo "$(swift build -c release --static-swift-stdlib "$@" --show-bin-path)/rgate"
