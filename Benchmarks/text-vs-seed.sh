#!/usr/bin/env bash
# Side-by-side benchmark of the seed text protocol: the seed server
# (shared/seed/rpyserve.py, rpy2) against rgate's text port, driven by the same
# neutral load generator (Benchmarks/textload) in fresh mode: one connection
# per request, as the seed client does.
#
# Usage:
#   Benchmarks/text-vs-seed.sh                          # seed only
#   RGATE_BIN=.build/release/rgate Benchmarks/text-vs-seed.sh   # seed and rgate
#
# Environment (all optional):
#   RGATE_BIN         rgate binary; started as `$RGATE_BIN serve --text-port P --qap-port off`
#                     and ready once it prints a line containing "listening".
#                     Unset or not executable: only the seed is measured.
#   RGATE_ARGS        replaces "--qap-port off" in that command (word-split), e.g.
#                     RGATE_ARGS="" for a build without a QAP listener
#   RGATE_VENV        venv with rpy2 (made by scripts/python-env.sh if incomplete)
#   RGATE_SEED_DIR    default: "$(git rev-parse --show-toplevel)/../shared/seed"
#   BENCH_SECONDS     seconds per textload run (default 3)
#   BENCH_ROUNDS      rounds, servers alternating within each (default 3)
#   BENCH_CODE        R code sent (default 1+1); BENCH_EXPECT: substring every
#                     reply must contain (default "[1] 2"; empty to not check)
#
# Each round runs, per server: 1 connection, then 8 connections, BENCH_SECONDS
# each after 20 warm-up requests. Printed: every run as a JSON line, then the
# median over rounds per server and configuration, and rgate/seed ratios.
# "Session start latency" is the p50 of fresh mode with 1 connection: connect,
# send, evaluate, full reply. Raw lines also go to Benchmarks/results/ (ignored
# by git). With the defaults the whole run takes about 1 minute with rgate.
#
# Fairness notes: both servers run on this machine with stdout/stderr to a log
# file; the seed runs with Python's default (buffered) stdout, PYTHONUNBUFFERED
# removed. The seed is single-threaded with a listen backlog of 5, so at 8
# connections some SYNs are dropped and retried after 1 s: its max latency then
# shows ~1 s. That is the seed's real behaviour, not a textload artefact.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
seed_dir=${RGATE_SEED_DIR:-$root/../shared/seed}
seconds=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-3}
code=${BENCH_CODE:-1+1}
expect=${BENCH_EXPECT-[1] 2}
conn_counts=(1 8)
warmup=20

log() { printf 'text-vs-seed: %s\n' "$*" >&2; }

[ -f "$seed_dir/rpyserve.py" ] || { log "seed server not found at $seed_dir/rpyserve.py"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/text-vs-seed.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    # Each server was started in its own process group (setsid): end the group,
    # so worker processes a server spawned go too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

venv=$("$root/scripts/python-env.sh" | tail -n 1)
py="$venv/bin/python"

cc -O2 -o "$work/textload" "$here/textload/textload.c" -lpthread

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

textload() { # port connections seconds [extra args...]
  local port=$1 conns=$2 secs=$3
  shift 3
  local args=(--port "$port" --mode fresh --connections "$conns" --code "$code")
  [ -n "$expect" ] && args+=(--expect "$expect")
  # textload bounds itself (10 s socket timeouts); the outer timeout is a backstop.
  timeout $((secs + 60)) "$work/textload" "${args[@]}" "$@"
}

# Waits until a server on $port answers a real request. Returns 0 when it does,
# 1 if its process ended (e.g. the port was taken: worth another try), 2 if it
# is still silent after 30 s (not worth another try).
wait_answering() { # pid port name [ready-pattern log]
  local pid=$1 port=$2 name=$3 pattern=${4:-} logfile=${5:-}
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if { [ -z "$pattern" ] || grep -qi -- "$pattern" "$logfile"; } &&
       "$work/textload" --port "$port" --requests 1 --code "$code" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "$name did not answer on port $port within 30 s"
  return 2
}

# Starts a server in its own process group; sets ${name}_port. Up to 3 tries
# on fresh ports if the process ends during start-up.
start_server() { # name ready-pattern command... (command may use @PORT@)
  local name=$1 pattern=$2 try pid port rc
  shift 2
  for try in 1 2 3; do
    port=$(free_port)
    local cmd=("${@//@PORT@/$port}")
    (cd "$work" && exec setsid "${cmd[@]}" >"$work/$name.log" 2>&1 </dev/null) &
    pid=$!
    pids+=("$pid")
    rc=0
    wait_answering "$pid" "$port" "$name" "$pattern" "$work/$name.log" || rc=$?
    if [ "$rc" = 0 ]; then
      printf -v "${name}_port" '%s' "$port"
      log "$name listening on 127.0.0.1:$port"
      return 0
    fi
    log "$name did not start (try $try); the end of its log:"
    tail -n 5 "$work/$name.log" >&2 || true
    [ "$rc" = 1 ] || return 1
  done
  return 1
}

seed_port= rgate_port=
servers=(seed)
if [ -n "${RGATE_BIN:-}" ]; then
  if [ -x "$RGATE_BIN" ]; then
    RGATE_BIN=$(cd "$(dirname "$RGATE_BIN")" && pwd)/$(basename "$RGATE_BIN")
    servers+=(rgate)
  else
    log "RGATE_BIN=$RGATE_BIN is not an executable file: measuring the seed only"
  fi
else
  log "RGATE_BIN unset: measuring the seed only"
fi

# The seed runs with Python's default buffered stdout (PYTHONUNBUFFERED removed).
start_server seed '' env -u PYTHONUNBUFFERED "$py" "$seed_dir/rpyserve.py" \
  --hostname 127.0.0.1 --port @PORT@ || { log "cannot start the seed server"; exit 1; }
if [[ " ${servers[*]} " == *" rgate "* ]]; then
  read -r -a rgate_args <<<"${RGATE_ARGS---qap-port off}"
  start_server rgate listening "$RGATE_BIN" serve --text-port @PORT@ "${rgate_args[@]}" \
    || { log "cannot start rgate"; exit 1; }
fi

mkdir -p "$root/Benchmarks/results"
raw="$work/raw.jsonl"
: >"$raw"
for round in $(seq "$rounds"); do
  for server in "${servers[@]}"; do
    port_var=${server}_port
    for conns in "${conn_counts[@]}"; do
      line=$(textload "${!port_var}" "$conns" "$seconds" --duration "$seconds" --warmup "$warmup" \
             2>"$work/textload.err") || true
      if [ -z "$line" ]; then
        log "textload against $server failed: $(cat "$work/textload.err")"
        line="{\"requests\":0,\"errors\":1,\"connections\":$conns}"
      elif [ -s "$work/textload.err" ]; then
        log "$server c$conns: $(cat "$work/textload.err")"
      fi
      printf '{"round":%d,"server":"%s",%s\n' "$round" "$server" "${line#\{}" | tee -a "$raw"
    done
  done
done
cp "$raw" "$root/Benchmarks/results/text-vs-seed.jsonl"

"$py" - "$raw" <<'PY'
import json, statistics, sys

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = list(dict.fromkeys(r["server"] for r in runs))
conns = sorted({r.get("connections", 0) for r in runs if "connections" in r})

def med(server, c, key):
    vals = [r[key] for r in runs if r["server"] == server and r.get("connections") == c and key in r]
    return statistics.median(vals) if vals else None

def errs(server, c):
    return sum(r["errors"] for r in runs if r["server"] == server and r.get("connections") == c)

def f(x, width):
    return f"{x:>{width}.0f}" if x is not None else f"{'-':>{width}}"

def ratio(a, b):
    return f"x{a / b:.2f}" if a is not None and b else "-"

print()
print(f"medians over {max(r['round'] for r in runs)} rounds (fresh mode: one connection per request)")
print(f"{'server':<7}{'conns':>6}{'rps':>10}{'p50_us':>9}{'p90_us':>9}{'p99_us':>9}{'max_us':>10}{'errors':>8}")
for s in servers:
    for c in conns:
        print(f"{s:<7}{c:>6}{f(med(s,c,'rps'),10)}{f(med(s,c,'p50_us'),9)}{f(med(s,c,'p90_us'),9)}"
              f"{f(med(s,c,'p99_us'),9)}{f(med(s,c,'max_us'),10)}{errs(s,c):>8}")
print()
for s in servers:
    print(f"session start latency ({s}): p50{f(med(s, 1, 'p50_us'), 7)} us (fresh mode, 1 connection)")
if "rgate" in servers:
    print()
    print("ratios rgate/seed (rps: higher is better for rgate; p50: lower is better for rgate)")
    for c in conns:
        print(f"  {c} connection(s): rps {ratio(med('rgate', c, 'rps'), med('seed', c, 'rps'))}"
              f"  p50 {ratio(med('rgate', c, 'p50_us'), med('seed', c, 'p50_us'))}")
PY
