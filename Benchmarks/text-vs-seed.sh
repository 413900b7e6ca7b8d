#!/usr/bin/env bash
# Side-by-side benchmark of the seed text protocol: the seed server
# (shared/seed/rpyserve.py, rpy2) against one or more rgate servers (variants:
# e.g. a fresh session per connection, and --shared-session), all driven by the
# same neutral load generator (Benchmarks/textload).
#
# Usage:
#   Benchmarks/text-vs-seed.sh                                   # seed only
#   RGATE_BIN=.build/release/rgate Benchmarks/text-vs-seed.sh    # seed, rgate default, rgate shared
#   RGATE_BIN=... RGATE_VARIANTS='w4:;w8:--workers 8' Benchmarks/text-vs-seed.sh
#
# Environment (all optional):
#   RGATE_BIN         rgate binary. Unset or not executable: only the seed is measured.
#   RGATE_VARIANTS    the rgate servers to measure, ';'-separated `name:args` (args
#                     word-split), default "default:;shared:--shared-session". Each
#                     variant is its own server process, started as
#                       $RGATE_BIN serve --text-port P --workers $RGATE_WORKERS [--qap-port off] $RGATE_ARGS <args>
#                     (a variant's own --workers comes later and so wins) and ready
#                     once it prints "rgate: listening text ...". Leading NAME=VALUE
#                     words of a variant are put in its environment instead, e.g.
#                     "thp:GLIBC_TUNABLES=glibc.malloc.hugetlb=1" (the zygote
#                     inherits the supervisor's environment).
#   RGATE_WORKERS     --workers for every variant (default 4)
#   RGATE_ARGS        extra arguments for every variant (default empty), e.g.
#                     "--log-level warning". If the binary has a --qap-port option
#                     (its default is a fixed port, which several variants running at
#                     once would fight over), "--qap-port off" is added before these
#                     unless RGATE_ARGS names --qap-port itself.
#   RGATE_VENV        venv with rpy2 (made by scripts/python-env.sh if incomplete)
#   RGATE_SEED_DIR    default: "$(git rev-parse --show-toplevel)/../shared/seed"
#   BENCH_SECONDS     seconds per textload run (default 3)
#   BENCH_ROUNDS      rounds (default 3)
#   BENCH_CONFIGS     the configurations, space-separated MODE:CONNECTIONS, default
#                     "fresh:1 fresh:8 keep:1". keep (many requests per connection)
#                     is only run against rgate: the seed closes the connection
#                     after one reply, so its keep rows are n/a.
#   BENCH_PAUSE       seconds of quiet before each run (default 0.3), so that a
#                     server refilling its pool after the previous run does not
#                     steal CPU from the next one
#   BENCH_CODE        R code sent (default 1+1); BENCH_EXPECT: substring every
#                     reply must contain (default "[1] 2"; empty to not check)
#
# Order: for each round, for each configuration, every server in turn (servers
# alternate run by run, so drift on the machine spreads over all of them). Each
# run: 20 unrecorded warm-up requests, then BENCH_SECONDS of load. Printed: every
# run as a JSON line, then a table of medians over rounds with ratios against the
# seed in fresh mode with the same number of connections (so a keep row compares
# rgate's per-request cost on an open connection with the seed's only mode). "Session start latency" is the p50 of fresh
# mode with 1 connection: connect, send, evaluate, full reply. Raw lines go to
# Benchmarks/results/text-vs-seed.jsonl and the table to
# Benchmarks/results/text-vs-seed.txt (ignored by git). With the defaults and
# two variants the whole run takes about 1.5 minutes.
#
# Fairness notes: every server runs on this machine with stdout/stderr to a log
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
pause=${BENCH_PAUSE:-0.3}
read -r -a configs <<<"${BENCH_CONFIGS:-fresh:1 fresh:8 keep:1}"
variants_spec=${RGATE_VARIANTS-default:;shared:--shared-session}
workers=${RGATE_WORKERS:-4}
read -r -a common_args <<<"${RGATE_ARGS:-}"
warmup=20

log() { printf 'text-vs-seed: %s\n' "$*" >&2; }

[ -f "$seed_dir/rpyserve.py" ] || { log "seed server not found at $seed_dir/rpyserve.py"; exit 1; }
for config in "${configs[@]}"; do
  [[ "$config" =~ ^(fresh|keep):[1-9][0-9]*$ ]] || { log "bad BENCH_CONFIGS entry: $config (want fresh:N or keep:N)"; exit 2; }
done

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

textload() { # port mode connections seconds [extra args...]
  local port=$1 mode=$2 conns=$3 secs=$4
  shift 4
  local args=(--port "$port" --mode "$mode" --connections "$conns" --code "$code")
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
    if { [ -z "$pattern" ] || grep -q -- "$pattern" "$logfile"; } &&
       "$work/textload" --port "$port" --requests 1 --code "$code" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "$name did not answer on port $port within 30 s"
  return 2
}

# Starts a server in its own process group and records its port in port_of.
# Up to 3 tries on fresh ports if the process ends during start-up.
declare -A port_of
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
      port_of[$name]=$port
      log "$name listening on 127.0.0.1:$port (pid $pid): ${cmd[*]}"
      return 0
    fi
    log "$name did not start (try $try); the end of its log:"
    tail -n 5 "$work/$name.log" >&2 || true
    [ "$rc" = 1 ] || return 1
  done
  return 1
}

servers=(seed)
declare -A variant_args
if [ -n "${RGATE_BIN:-}" ]; then
  if [ -x "$RGATE_BIN" ]; then
    RGATE_BIN=$(cd "$(dirname "$RGATE_BIN")" && pwd)/$(basename "$RGATE_BIN")
    if [[ " ${common_args[*]-} " != *" --qap-port"* ]] &&
       "$RGATE_BIN" serve --help 2>/dev/null | grep -q -- '--qap-port'; then
      common_args=(--qap-port off ${common_args[@]+"${common_args[@]}"})
    fi
    IFS=';' read -r -a variant_list <<<"$variants_spec"
    for spec in "${variant_list[@]}"; do
      [ -n "${spec//[[:space:]]/}" ] || continue
      vname=${spec%%:*}
      vname=${vname//[[:space:]]/}
      [[ "$vname" =~ ^[A-Za-z0-9_.+-]+$ ]] || { log "bad RGATE_VARIANTS entry: '$spec' (want name:args)"; exit 2; }
      [[ "$spec" == *:* ]] && vargs=${spec#*:} || vargs=
      servers+=("rgate-$vname")
      variant_args[rgate-$vname]=$vargs
    done
  else
    log "RGATE_BIN=$RGATE_BIN is not an executable file: measuring the seed only"
  fi
else
  log "RGATE_BIN unset: measuring the seed only"
fi

# The seed runs with Python's default buffered stdout (PYTHONUNBUFFERED removed).
start_server seed '' env -u PYTHONUNBUFFERED "$py" "$seed_dir/rpyserve.py" \
  --hostname 127.0.0.1 --port @PORT@ || { log "cannot start the seed server"; exit 1; }
for server in "${servers[@]}"; do
  [ "$server" = seed ] && continue
  read -r -a vargs <<<"${variant_args[$server]}"
  venv_words=()
  while [ "${#vargs[@]}" -gt 0 ] && [[ "${vargs[0]}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    venv_words+=("${vargs[0]}")
    vargs=("${vargs[@]:1}")
  done
  start_server "$server" 'rgate: listening text' env ${venv_words[@]+"${venv_words[@]}"} \
    "$RGATE_BIN" serve --text-port @PORT@ \
    --workers "$workers" ${common_args[@]+"${common_args[@]}"} ${vargs[@]+"${vargs[@]}"} \
    || { log "cannot start $server"; exit 1; }
done

mkdir -p "$root/Benchmarks/results"
raw="$work/raw.jsonl"
: >"$raw"
started=$SECONDS
# Other work on the machine skews every figure: the load average is reported with the table.
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do
    mode=${config%%:*} conns=${config#*:}
    for server in "${servers[@]}"; do
      [ "$server" = seed ] && [ "$mode" = keep ] && continue # the seed serves one request per connection
      sleep "$pause"
      line=$(textload "${port_of[$server]}" "$mode" "$conns" "$seconds" --duration "$seconds" \
             --warmup "$warmup" 2>"$work/textload.err") || true
      if [ -z "$line" ]; then
        log "textload against $server ($mode, $conns) failed: $(cat "$work/textload.err")"
        line="{\"requests\":0,\"errors\":1,\"mode\":\"$mode\",\"connections\":$conns}"
      elif [ -s "$work/textload.err" ]; then
        log "$server $mode c$conns: $(cat "$work/textload.err")"
      fi
      printf '{"round":%d,"server":"%s",%s\n' "$round" "$server" "${line#\{}" | tee -a "$raw"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
log "measured for $((SECONDS - started)) s"
cp "$raw" "$root/Benchmarks/results/text-vs-seed.jsonl"

{
  echo "rgate: ${RGATE_BIN:-none}; common arguments: --workers $workers ${common_args[*]-}"
  echo "machine: $(nproc) CPUs; load average before $load_before, after $load_after" \
    "(before: near 0 on a quiet machine; the benchmark itself keeps about 2 CPUs busy)"
  for server in "${servers[@]}"; do
    [ "$server" = seed ] || echo "  $server: ${variant_args[$server]:-(no extra arguments)}"
  done
  "$py" - "$raw" "$seconds" "${configs[@]}" <<'PY'
import json, statistics, sys

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seconds = sys.argv[2]
configs = [(c.split(":")[0], int(c.split(":")[1])) for c in sys.argv[3:]]
servers = list(dict.fromkeys(r["server"] for r in runs))
nrounds = max(r["round"] for r in runs)

def sel(s, mode, c):
    return [r for r in runs if r["server"] == s and r.get("mode") == mode and r.get("connections") == c]

def med(s, mode, c, key):
    vals = [r[key] for r in sel(s, mode, c) if key in r and r.get("requests", 0) > 0]
    return statistics.median(vals) if vals else None

def f(x, width):
    return f"{x:>{width}.0f}" if x is not None else f"{'n/a':>{width}}"

def ratio(a, b):
    return f"x{a / b:.2f}" if a is not None and b else "n/a"

print()
print(f"medians over {nrounds} rounds of {seconds} s; fresh = one connection per request "
      f"(latency from connect to last reply byte), keep = requests back to back on open connections")
print("ratios are against the seed in fresh mode with the same number of connections "
      "(rps: >1 is better than the seed; p50/p99: <1 is better)")
hdr = (f"{'server':<20}{'mode':<6}{'conns':>5}{'rps':>9}{'p50_us':>9}{'p90_us':>9}{'p99_us':>9}"
       f"{'max_us':>9}{'errors':>7}{'rps/seed':>10}{'p50/seed':>10}{'p99/seed':>10}")
print(hdr)
print("-" * len(hdr))
for mode, c in configs:
    for s in servers:
        rows = sel(s, mode, c)
        if not rows:
            if s == "seed" and mode == "keep":
                print(f"{s:<20}{mode:<6}{c:>5}   n/a (the seed serves one request per connection)")
            continue
        base = "seed"
        bmode = "fresh"
        cells = "".join(f(med(s, mode, c, k), 9) for k in ("rps", "p50_us", "p90_us", "p99_us", "max_us"))
        errors = sum(r.get("errors", 0) for r in rows)
        if s == "seed":
            ratios = f"{'':>10}{'':>10}{'':>10}"
        else:
            ratios = (f"{ratio(med(s, mode, c, 'rps'), med(base, bmode, c, 'rps')):>10}"
                      f"{ratio(med(s, mode, c, 'p50_us'), med(base, bmode, c, 'p50_us')):>10}"
                      f"{ratio(med(s, mode, c, 'p99_us'), med(base, bmode, c, 'p99_us')):>10}")
        print(f"{s:<20}{mode:<6}{c:>5}{cells}{errors:>7}{ratios}")
    print()
if any(m == "fresh" and c == 1 for m, c in configs):
    for s in servers:
        p50 = med(s, "fresh", 1, "p50_us")
        print(f"session start latency {s:<20} p50 {f(p50, 6)} us (fresh mode, 1 connection)")
PY
} | tee "$root/Benchmarks/results/text-vs-seed.txt"
