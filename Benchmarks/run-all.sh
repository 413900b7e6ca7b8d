#!/usr/bin/env bash
# The whole benchmark suite in one command: builds what it needs, runs the in-process
# baselines (the floor), then rgate against Rserve (QAP1) and against the seed server (text
# protocol), and prints one summary.
#
# Usage (from anywhere in the repo):
#   Benchmarks/run-all.sh
#   RGATE_BIN=.build-rel/release/rgate Benchmarks/run-all.sh     # use an existing rgate binary
#
# Needs: Swift 6, a C compiler, R with headers (Debian r-base-core, r-base-dev), Rserve
# (r-cran-rserve), python3 with venv (the seed server's rpy2 is installed by
# scripts/python-env.sh on first use, from PyPI), and the seed at ../shared/seed.
#
# Steps:
#   1. build  rgate (scripts/build-release.sh: release, Swift runtime linked statically, in
#             $RGATE_SCRATCH, default the root .build) unless RGATE_BIN is set; the baselines package
#             (Benchmarks/Baselines, its own .build); rtt, qapload and textload (cc)
#   2. floor  baselines: the engine's cost per call in-process, no network
#             (Benchmarks/Baselines/Sources/baselines/main.swift); rtt: loopback TCP
#             round trip and connect+round trip, unpinned and with both ends on one CPU
#             (Benchmarks/rtt/rtt.c); fork: what the kernel charges a process per
#             session, by mappings and heap layout (Benchmarks/forkfloor/forkfloor.c)
#   3. Benchmarks/qap-vs-rserve.sh   rgate vs Rserve: P1-P5, M1, sizes and connections
#   4. Benchmarks/text-vs-seed.sh    rgate vs the seed server: P6 (fresh:1), fresh:8, keep:1
#   5. summary on stdout and in Benchmarks/results/summary.md (with every phase's output
#      and log in Benchmarks/results/, which git ignores)
#
# Environment (all optional):
#   RGATE_BIN       an rgate binary to benchmark (skips building rgate)
#   RGATE_SCRATCH   SwiftPM scratch path for building rgate (default: <repo>/.build)
#   BENCH_STEPS     which steps run, space-separated from: baselines rtt fork qap text
#                   (default: all five)
#   BASELINE_ITERATIONS  calls per baseline (default 20000; conversion: 200)
#   Everything else is passed to the two comparison scripts unchanged: BENCH_SECONDS,
#   BENCH_ROUNDS, BENCH_ONLY, BENCH_EXTRA, RGATE_WORKERS, RGATE_ARGS, RGATE_VARIANTS,
#   BENCH_CONFIGS, ... (see their headers).
#
# With the defaults, after the builds, the run takes about 6 minutes: baselines and rtt
# ~15 s, qap-vs-rserve ~3.5-4 min, text-vs-seed ~1.5 min. Every server a step starts is
# stopped by that step (each script cleans up on exit, Ctrl-C or TERM); run-all forwards
# Ctrl-C/TERM to the step in progress. Exit status: 0 when every step ran, 1 otherwise (the
# summary says which failed); a goal not met is a result, not a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))
results=$root/Benchmarks/results
read -r -a steps <<<"${BENCH_STEPS:-baselines rtt fork qap text}"
iterations=${BASELINE_ITERATIONS:-20000}

log() { printf 'run-all: %s\n' "$*" >&2; }
want() { [[ " ${steps[*]} " == *" $1 "* ]]; }
for s in "${steps[@]}"; do
  case $s in baselines | rtt | fork | qap | text) ;; *) log "unknown BENCH_STEPS entry: $s"; exit 2 ;; esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/run-all.XXXXXX")
child=
tailer=
cleanup() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  [ -n "$tailer" ] && { kill "$tailer" 2>/dev/null || true; wait "$tailer" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

mkdir -p "$results"
started=$SECONDS
failed=()
phase_time=()

# Runs a step in the background (so a signal to run-all reaches it at once), its stdout to
# $out and stderr to $errlog, showing its progress lines (not its JSON lines) on stderr.
run_step() { # name out errlog command...
  local name=$1 out=$2 errlog=$3 rc=0 t0=$SECONDS
  shift 3
  log "== $name: $*"
  : >"$errlog"
  "$@" >"$out" 2>"$errlog" </dev/null &
  child=$!
  tail -n +1 -f --pid="$child" "$errlog" 2>/dev/null | grep --line-buffered -v '^{' | sed -u 's/^/    /' >&2 &
  tailer=$!
  wait "$child" || rc=$?
  child=
  wait "$tailer" 2>/dev/null || true
  tailer=
  phase_time+=("$name $((SECONDS - t0)) s")
  if [ "$rc" != 0 ]; then
    log "$name failed (exit $rc); the end of its log ($errlog):"
    tail -n 15 "$errlog" | sed 's/^/    /' >&2 || true
    failed+=("$name")
    return 1
  fi
  log "$name done in $((SECONDS - t0)) s"
}

# ---- 1. build ----
command -v cc >/dev/null || { log "no C compiler (cc)"; exit 2; }
cc -O2 -pthread -o "$work/rtt" "$here/rtt/rtt.c"
cc -O2 -o "$work/forkfloor" "$here/forkfloor/forkfloor.c"
# The comparison scripts compile their load generators themselves; compile them here too so a
# broken one stops the run before minutes of measuring.
cc -O2 -o "$work/qapload" "$here/qapload/qapload.c" -lpthread
cc -O2 -o "$work/textload" "$here/textload/textload.c" -lpthread

if want qap || want text; then
  if [ -n "${RGATE_BIN:-}" ]; then
    [ -x "$RGATE_BIN" ] || { log "RGATE_BIN=$RGATE_BIN is not an executable"; exit 2; }
  else
    scratch=${RGATE_SCRATCH:-$root/.build}
    log "building rgate (scripts/build-release.sh --scratch-path $scratch)"
    t0=$SECONDS
    "$root/scripts/build-release.sh" --scratch-path "$scratch" >"$work/build-rgate.out" 2>"$work/build-rgate.log" ||
      { tail -n 30 "$work/build-rgate.log" >&2; log "building rgate failed"; exit 1; }
    RGATE_BIN=$(tail -n 1 "$work/build-rgate.out")
    log "rgate built in $((SECONDS - t0)) s: $RGATE_BIN"
  fi
  RGATE_BIN=$(cd "$(dirname "$RGATE_BIN")" && pwd)/$(basename "$RGATE_BIN")
  export RGATE_BIN
fi
if want baselines; then
  log "building the baselines (swift build -c release in Benchmarks/Baselines)"
  t0=$SECONDS
  (cd "$here/Baselines" && swift build -c release) >"$work/build-baselines.log" 2>&1 ||
    { tail -n 30 "$work/build-baselines.log" >&2; log "building the baselines failed"; exit 1; }
  baselines_bin=$(cd "$here/Baselines" && swift build -c release --show-bin-path)/baselines
  log "baselines built in $((SECONDS - t0)) s"
fi
build_s=$((SECONDS - started))

# ---- 2. floor ----
: >"$results/baselines.jsonl"
if want baselines; then
  run_step baselines "$work/baselines.out" "$results/baselines.log" \
    "$baselines_bin" --iterations "$iterations" && cat "$work/baselines.out" >>"$results/baselines.jsonl" || true
fi
if want rtt; then
  { run_step rtt "$work/rtt.out" "$results/rtt.log" "$work/rtt" &&
    run_step rtt-pinned "$work/rtt-pinned.out" "$results/rtt-pinned.log" "$work/rtt" --pin 0 &&
    cat "$work/rtt.out" "$work/rtt-pinned.out" >>"$results/baselines.jsonl"; } || true
fi
rm -f "$results/forkfloor.txt"
if want fork; then
  run_step forkfloor "$results/forkfloor.txt" "$results/forkfloor.log" "$work/forkfloor" || true
fi

# ---- 3, 4. side by side ----
if want qap; then
  run_step qap-vs-rserve "$results/qap-vs-rserve.md" "$results/qap-vs-rserve.log" "$here/qap-vs-rserve.sh" || true
fi
if want text; then
  rm -f "$results/text-vs-seed.txt"
  run_step text-vs-seed "$results/text-vs-seed.out" "$results/text-vs-seed.log" "$here/text-vs-seed.sh" || true
fi

# ---- 5. summary ----
{
  echo "# rgate benchmark suite"
  echo
  echo "machine: $(nproc) CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rgate: ${RGATE_BIN:-n/a}; R $(Rscript -e 'cat(R.version$major, R.version$minor, sep=".")' 2>/dev/null || echo '?')"
  echo "command: Benchmarks/run-all.sh (BENCH_STEPS=${steps[*]}); builds $build_s s; steps: ${phase_time[*]/%/;} total $((SECONDS - started)) s"
  if [ -s "$results/baselines.jsonl" ]; then
    echo
    echo "## Floor: in-process baselines (no network) and loopback round trips"
    echo
    python3 - "$results/baselines.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {r["baseline"]: r for r in rows}
def n(x):
    return "" if x is None else f"{x:,.1f}" if x >= 100 else f"{x:,.2f}"
print("| baseline | what | median µs | p99 µs | calls/s |")
print("|---|---|--:|--:|--:|")
for r in rows:
    cps = r.get("calls_per_s")
    print(f"| {r['baseline']} | {r['what']} | {n(r['median_us'])} | {'' if r['iterations'] == 1 else n(r['p99_us'])} | "
          f"{'' if cps is None else f'{cps:,.0f}'} |")
def floor(label, parts):
    if all(p in by for p in parts):
        t = sum(by[p]["median_us"] for p in parts)
        print(f"- {label}: {' + '.join(parts)} = {t:,.1f} µs per request, at most {1e6 / t:,.0f} requests/s for one client")
print()
print("Floors (sums of medians: what one client, one request at a time, would see from a server that added nothing):")
floor("P1 (QAP1 1+1, open connection)", ["loopback_rtt", "eval_keep"])
floor("P2 (QAP1 connect, 1+1, close)", ["loopback_connect", "eval_keep"])
floor("P6 (text 1+1, fresh connection)", ["loopback_connect", "eval_console"])
floor("keep:1 (text 1+1, open connection)", ["loopback_rtt", "eval_console"])
if "loopback_rtt_pinned" in by:
    print(f"- with client and server on one CPU the round trip is {by['loopback_rtt_pinned']['median_us']:,.1f} µs instead of "
          f"{by['loopback_rtt']['median_us']:,.1f} µs: the difference is the cost of waking a thread on another CPU")
PY
  fi
  if [ -s "$results/forkfloor.txt" ]; then
    echo
    echo "## Floor: the kernel's cost of a process per session (Benchmarks/forkfloor)"
    echo
    echo "Fork a process shaped like a zygote, let the child write pages spread over its heap, exit, reap;"
    echo "no R, no network. rgate and Rserve both pay this for every fresh session."
    echo
    echo '```'
    grep -v '^{' "$results/forkfloor.txt"
    echo '```'
  fi
  if want qap && [ -s "$results/qap-vs-rserve.md" ]; then
    echo
    echo "## QAP1: rgate vs Rserve (Benchmarks/qap-vs-rserve.sh)"
    echo
    cat "$results/qap-vs-rserve.md"
  fi
  if want text && [ -s "$results/text-vs-seed.txt" ]; then
    echo
    echo "## Text protocol: rgate vs the seed server (Benchmarks/text-vs-seed.sh)"
    echo
    echo '```'
    cat "$results/text-vs-seed.txt"
    echo '```'
  fi
  if [ "${#failed[@]}" -gt 0 ]; then
    echo
    echo "FAILED steps: ${failed[*]} (their logs are in Benchmarks/results/)"
  fi
} >"$results/summary.md"
echo
cat "$results/summary.md"
log "summary in $results/summary.md; total $((SECONDS - started)) s"
[ "${#failed[@]}" = 0 ]
