#!/usr/bin/env bash
# Side-by-side benchmark of Rserve's QAP1 protocol: rgate against the real Rserve
# (Debian r-cran-rserve), both on free loopback ports, driven by the same neutral
# load generator (Benchmarks/qapload/qapload.c) with the same command per workload.
#
# Usage (from anywhere in the repo):
#   scripts/build-release.sh        # release, Swift runtime linked statically (what serve.sh runs)
#   Benchmarks/qap-vs-rserve.sh
#   RGATE_BIN=.build-qapbench/release/rgate Benchmarks/qap-vs-rserve.sh
#
# Environment (all optional):
#   RGATE_BIN       rgate binary; default: the first of .build/release/rgate and
#                   .build-qapbench/release/rgate that exists
#   RGATE_WORKERS   --workers (default 4); RGATE_ARGS: extra `serve` arguments
#   RSERVE_BIN      the Rserve binary; default: system.file("libs","Rserve",package="Rserve")
#   BENCH_SECONDS   seconds of load per run (default 2)
#   BENCH_ROUNDS    rounds (default 3); the servers alternate run by run and the
#                   order flips every round
#   BENCH_ONLY      a regex over workload ids: run only those (e.g. 'P1|P3|M1')
#   BENCH_EXTRA     extra workloads, space-separated, from: F1e8 (fetch 800 MB),
#                   C32 C64 (keep 1+1 with 32/64 connections)
#   BENCH_PAUSE     extra seconds of quiet before each run (default 0); every run
#                   is followed by 0.6 s of quiet anyway (a server refilling its
#                   pool then does not steal CPU from the next run, and Rserve has
#                   reaped its children, whose CPU time counts for the run)
#   M1_SESSIONS     sessions held open for M1 (default 20)
#
# Workloads (ratio = rgate throughput / Rserve throughput, median over rounds):
#   P1  keep  1+1, one connection (per-request overhead)          goal >= 1.0x
#   P2  fresh connect, eval 1+1, close, one connection            goal >= 2x
#   P3  fetch an existing 1e7-double vector (80 MB)               goal >= 2x
#   P4  fetch an existing 1e5-string vector                       goal >= 2x
#   P5  keep  sum(1:1000), 8 connections                          goal >= 1.0x
#   M1  PSS per idle session, 20 sessions open                    goal <= Rserve
#   F1e3 F1e5 F1e6: fetch of 1e3/1e5/1e6 doubles (1e7 is P3)
#   C2 C4 C8 C16:   keep 1+1 with 2/4/8/16 connections (1 is P1)
# The fetched objects are made per connection by an untimed voidEval and are
# ordinary (non-ALTREP) vectors in both servers: `as.numeric(1:n) + 0` (R 4.2's
# as.numeric(1:n) is still a compact ALTREP sequence) and `paste0(1:1e5)` (the
# strings of as.character(1:1e5), which would be a deferred-conversion ALTREP).
# qapload checks every reply is RESP_OK with a DT_SEXP; the table flags a
# workload whose reply size differs between the servers.
#
# M1: each round, for each server: total PSS (/proc/PID/smaps_rollup) of the
# server's whole process tree (rgate: supervisor, zygote, sessions and spares;
# Rserve: the server and its forked children) with no client, then with
# M1_SESSIONS connections open, each having run one voidEval `1`; both after the
# process count has been stable for 1 s. MB per session = (with - without) / N.
#
# CPU: around every run, the CPU time (utime+stime, with reaped children) of the
# server's whole process tree is read from /proc; the table shows it per request.
# On a shared or small machine this is steadier than throughput, which moves
# with whatever else runs.
#
# Output: a markdown table on stdout; progress and every run as a JSON line on
# stderr; everything in Benchmarks/results/qap-vs-rserve.json (ignored by git).
# With the defaults the whole run takes about 3.5 minutes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))
seconds=${BENCH_SECONDS:-2}
rounds=${BENCH_ROUNDS:-3}
pause=${BENCH_PAUSE:-0}
only=${BENCH_ONLY:-}
extra=${BENCH_EXTRA:-}
m1_sessions=${M1_SESSIONS:-20}
workers=${RGATE_WORKERS:-4}
read -r -a common_args <<<"${RGATE_ARGS:-}"

log() { printf 'qap-vs-rserve: %s\n' "$*" >&2; }

if [ -z "${RGATE_BIN:-}" ]; then
  for c in "$root/.build/release/rgate" "$root/.build-qapbench/release/rgate"; do
    [ -x "$c" ] && { RGATE_BIN=$c; break; }
  done
fi
[ -n "${RGATE_BIN:-}" ] && [ -x "$RGATE_BIN" ] || {
  log "no rgate binary: build one (scripts/build-release.sh) or set RGATE_BIN"; exit 2; }
RGATE_BIN=$(cd "$(dirname "$RGATE_BIN")" && pwd)/$(basename "$RGATE_BIN")
RSERVE_BIN=${RSERVE_BIN:-$(Rscript -e 'cat(system.file("libs","Rserve",package="Rserve"))' 2>/dev/null || true)}
[ -n "$RSERVE_BIN" ] && [ -x "$RSERVE_BIN" ] || { log "Rserve not found (apt install r-cran-rserve, or set RSERVE_BIN)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/qap-vs-rserve.XXXXXX")
pids=()     # servers, each the leader of its own process group
holders=()  # qapload hold processes
cleanup() {
  local pid
  for pid in ${holders[@]+"${holders[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # Rserve's forked children outlive their parent: end the whole group.
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -o "$work/qapload" "$here/qapload/qapload.c" -lpthread
qapload() { # qapload bounds itself (30 s I/O timeouts, watchdog); timeout is a backstop
  timeout --foreground -k 5 300 "$work/qapload" "$@"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# Waits until $pid answers an eval on $port (after `pattern` appears in $logfile,
# if given). 0: answering; 1: the process ended; 2: silent for 60 s.
wait_answering() { # pid port name [pattern logfile]
  local pid=$1 port=$2 name=$3 pattern=${4:-} logfile=${5:-}
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -n "$port" ] && { [ -z "$pattern" ] || grep -q -- "$pattern" "$logfile"; } &&
       qapload keep --port "$port" --requests 1 --warmup 0 >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "$name did not answer within 60 s"
  return 2
}

declare -A port_of pid_of
start_rserve() {
  local try pid port rc
  for try in 1 2 3; do
    port=$(free_port)
    (cd "$work" && exec setsid R CMD "$RSERVE_BIN" --RS-port "$port" --RS-set daemon=disable \
      --RS-set encoding=utf8 --vanilla --no-save >"$work/rserve.log" 2>&1 </dev/null) &
    pid=$!
    pids+=("$pid")
    rc=0
    wait_answering "$pid" "$port" Rserve || rc=$?
    if [ "$rc" = 0 ]; then
      port_of[rserve]=$port; pid_of[rserve]=$pid
      log "Rserve listening on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    tail -n 5 "$work/rserve.log" >&2 || true
    [ "$rc" = 1 ] || return 1
  done
  return 1
}

start_rgate() {
  local pid port deadline=$((SECONDS + 60))
  : >"$work/rgate.out"
  (cd "$work" && exec setsid "$RGATE_BIN" serve --text-port off --qap-port 0 --workers "$workers" \
    --max-sessions 64 ${common_args[@]+"${common_args[@]}"} >"$work/rgate.out" 2>"$work/rgate.log" </dev/null) &
  pid=$!
  pids+=("$pid")
  port=
  while [ "$SECONDS" -lt "$deadline" ] && [ -z "$port" ]; do
    kill -0 "$pid" 2>/dev/null || break
    port=$(sed -n 's/^rgate: listening qap1 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/rgate.out" | head -n 1)
    [ -n "$port" ] || sleep 0.1
  done
  if [ -z "$port" ] || ! wait_answering "$pid" "$port" rgate; then
    log "rgate did not start; the end of its log:"; tail -n 10 "$work/rgate.log" >&2 || true
    return 1
  fi
  port_of[rgate]=$port; pid_of[rgate]=$pid
  log "rgate listening on 127.0.0.1:$port (pid $pid): $RGATE_BIN serve --text-port off --qap-port 0 --workers $workers --max-sessions 64 ${common_args[*]:-}"
}

# ---- memory (M1) ----
tree_pids() { # pid: it and all its descendants
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      inset[root] = 1; print root; changed = 1
      while (changed) { changed = 0
        for (i in pids) { p = pids[i]; if (!(p in inset) && (parent[p] in inset)) { inset[p] = 1; print p; changed = 1 } } }
    }'
}
tree_cpu_ticks() { # pid: CPU time (clock ticks) of its process tree, exited-and-reaped descendants included
  local p
  for p in $(tree_pids "$1"); do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ sub(/^[0-9]+ \(.*\) /, ""); t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}
tree_pss_kb() { # pid: total PSS (kB) of its process tree
  local total=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
settle() { # pid: wait until the tree's process count is unchanged for 1 s (at most 10 s)
  local last=-1 stable=0 n
  for _ in $(seq 40); do
    n=$(tree_pids "$1" | wc -l)
    if [ "$n" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$n; fi
    [ "$stable" -ge 4 ] && break
    sleep 0.25
  done
  echo "$last"
}
measure_m1() { # server round
  local server=$1 round=$2 pid=${pid_of[$1]} port=${port_of[$1]}
  local n0 pss0 n1 pss1 hold_pid line
  n0=$(settle "$pid"); pss0=$(tree_pss_kb "$pid")
  "$work/qapload" hold --port "$port" --connections "$m1_sessions" --duration 120 >"$work/hold.out" 2>>"$work/hold.err" &
  hold_pid=$!
  holders+=("$hold_pid")
  line=
  for _ in $(seq 300); do
    line=$(head -n 1 "$work/hold.out" 2>/dev/null || true)
    [ -n "$line" ] && break
    kill -0 "$hold_pid" 2>/dev/null || break
    sleep 0.1
  done
  n1=$(settle "$pid"); pss1=$(tree_pss_kb "$pid")
  kill -KILL "$hold_pid" 2>/dev/null || true
  wait "$hold_pid" 2>/dev/null || true
  holders=()
  local held
  held=$(printf '%s' "$line" | sed -n 's/.*"held":\([0-9]*\).*/\1/p')
  printf '{"server":"%s","workload":"M1","round":%d,"sessions":%d,"held":%s,"procs_idle":%d,"pss_idle_kb":%d,"procs_held":%d,"pss_held_kb":%d}\n' \
    "$server" "$round" "$m1_sessions" "${held:-0}" "$n0" "$pss0" "$n1" "$pss1" | tee -a "$work/raw.jsonl" >&2
  settle "$pid" >/dev/null
}

# ---- workloads: id|mode|connections|code|setup|warm-up|description ----
workloads=(
  "P1|keep|1|1+1||20|1+1, 1 connection"
  "P2|fresh|1|1+1||5|connect+eval 1+1+close"
  "P3|fetch|1|x|x <- as.numeric(1:1e7) + 0|2|fetch 1e7 doubles (80 MB)"
  "P4|fetch|1|s|s <- paste0(1:1e5)|5|fetch 1e5 strings"
  "P5|keep|8|sum(1:1000)||20|sum(1:1000), 8 connections"
  "F1e3|fetch|1|x|x <- as.numeric(1:1e3) + 0|20|fetch 1e3 doubles"
  "F1e5|fetch|1|x|x <- as.numeric(1:1e5) + 0|10|fetch 1e5 doubles"
  "F1e6|fetch|1|x|x <- as.numeric(1:1e6) + 0|5|fetch 1e6 doubles"
  "C2|keep|2|1+1||20|1+1, 2 connections"
  "C4|keep|4|1+1||20|1+1, 4 connections"
  "C8|keep|8|1+1||20|1+1, 8 connections"
  "C16|keep|16|1+1||20|1+1, 16 connections"
)
for e in $extra; do
  case $e in
    F1e8) workloads+=("F1e8|fetch|1|x|x <- as.numeric(1:1e8) + 0|1|fetch 1e8 doubles (800 MB)") ;;
    C32) workloads+=("C32|keep|32|1+1||20|1+1, 32 connections") ;;
    C64) workloads+=("C64|keep|64|1+1||20|1+1, 64 connections") ;;
    *) log "unknown BENCH_EXTRA entry: $e"; exit 2 ;;
  esac
done
selected() { [ -z "$only" ] || [[ "$1" =~ ^($only)$ ]]; }

start_rgate || exit 1
start_rserve || { log "cannot start Rserve"; exit 1; }

: >"$work/raw.jsonl"
hz=$(getconf CLK_TCK)
started=$SECONDS
servers=(rgate rserve)
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 0 ]; then order=(rserve rgate); else order=(rgate rserve); fi
  log "round $round/$rounds (order: ${order[*]})"
  if selected M1; then
    for server in "${order[@]}"; do measure_m1 "$server" "$round"; done
  fi
  for w in "${workloads[@]}"; do
    IFS='|' read -r id mode conns code setup warm desc <<<"$w"
    selected "$id" || continue
    for server in "${order[@]}"; do
      sleep "$pause"
      args=("$mode" --port "${port_of[$server]}" --connections "$conns" --code "$code"
            --duration "$seconds" --warmup "$warm")
      [ -n "$setup" ] && args+=(--setup "$setup")
      cpu0=$(tree_cpu_ticks "${pid_of[$server]}")
      out=$(qapload "${args[@]}" 2>>"$work/qapload.err" || true)
      sleep 0.6 # Rserve reaps its children every 0.5 s; their CPU time counts once reaped
      cpu1=$(tree_cpu_ticks "${pid_of[$server]}")
      [ -n "$out" ] || out='{"requests":0,"errors":-1}'
      printf '{"server":"%s","workload":"%s","round":%d,"server_cpu_s":%s,%s\n' "$server" "$id" "$round" \
        "$(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" "${out#\{}" |
        tee -a "$work/raw.jsonl" >&2
    done
  done
done
elapsed=$((SECONDS - started))
if [ -s "$work/qapload.err" ]; then log "qapload reported:"; sort "$work/qapload.err" | uniq -c >&2; fi

mkdir -p "$root/Benchmarks/results"
machine="$(nproc) CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
rserve_version=$(Rscript -e 'cat(as.character(packageVersion("Rserve")))' 2>/dev/null || echo '?')
r_version=$(Rscript -e 'cat(R.version$major, R.version$minor, sep=".")' 2>/dev/null || echo '?')
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

WORKLOADS=$(printf '%s\n' "${workloads[@]}") RAW="$work/raw.jsonl" OUT="$root/Benchmarks/results/qap-vs-rserve.json" \
MACHINE="$machine" RSERVE_VERSION="$rserve_version" R_VERSION="$r_version" RGATE_BIN="$RGATE_BIN" \
SECONDS_PER_RUN="$seconds" ROUNDS="$rounds" ELAPSED="$elapsed" LOADAVG="$loadavg" WORKERS="$workers" \
M1_N="$m1_sessions" RGATE_ARGS="${RGATE_ARGS:-}" COMMAND="${BASH_SOURCE[0]} (BENCH_ONLY=${only} BENCH_EXTRA=${extra})" \
python3 - <<'PY'
import json, os, statistics as st
runs = [json.loads(l) for l in open(os.environ["RAW"]) if l.strip()]
goals = {"P1": (">=", 1.0), "P2": (">=", 2.0), "P3": (">=", 2.0), "P4": (">=", 2.0), "P5": (">=", 1.0), "M1": ("<=", 1.0)}
desc = {}
for line in os.environ["WORKLOADS"].splitlines():
    f = line.split("|")
    desc[f[0]] = (f[1], int(f[2]), f[6])
def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None
summary = []
order = ["M1"] + [l.split("|")[0] for l in os.environ["WORKLOADS"].splitlines()]
for wid in order:
    rows = [r for r in runs if r["workload"] == wid]
    if not rows:
        continue
    s = {"workload": wid}
    if wid == "M1":
        s["description"] = f"PSS per idle session, {os.environ['M1_N']} sessions"
        for srv in ("rgate", "rserve"):
            rr = [r for r in rows if r["server"] == srv]
            per = [(r["pss_held_kb"] - r["pss_idle_kb"]) / r["sessions"] / 1024 for r in rr]
            s[srv] = {"mb_per_session": med(per), "rounds": per,
                      "pss_idle_mb": med([r["pss_idle_kb"] / 1024 for r in rr]),
                      "pss_held_mb": med([r["pss_held_kb"] / 1024 for r in rr]),
                      "procs_idle": med([r["procs_idle"] for r in rr]), "procs_held": med([r["procs_held"] for r in rr]),
                      "held": [r["held"] for r in rr]}
        a, b = s["rgate"]["mb_per_session"], s["rserve"]["mb_per_session"]
        s["ratio"] = a / b if a is not None and b else None
    else:
        mode, conns, d = desc[wid]
        s.update(mode=mode, connections=conns, description=d)
        for srv in ("rgate", "rserve"):
            rr = [r for r in rows if r["server"] == srv]
            s[srv] = {k: med([r.get(k) for r in rr]) for k in ("rps", "p50_us", "p99_us", "bytes_per_reply")}
            s[srv]["cpu_us_per_request"] = med([r["server_cpu_s"] * 1e6 / r["requests"] for r in rr if r.get("requests")])
            s[srv]["errors"] = sum(max(r.get("errors", 0), 0) for r in rr)
            s[srv]["failed_runs"] = sum(1 for r in rr if r.get("errors", 0) < 0 or not r.get("requests"))
            s[srv]["rps_rounds"] = [r.get("rps") for r in rr]
        a, b = s["rgate"]["rps"], s["rserve"]["rps"]
        s["ratio"] = a / b if a and b else None
        ba, bb = s["rgate"]["bytes_per_reply"], s["rserve"]["bytes_per_reply"]
        s["same_reply_size"] = ba == bb
        ca, cb = s["rgate"]["cpu_us_per_request"], s["rserve"]["cpu_us_per_request"]
        s["cpu_ratio"] = cb / ca if ca and cb else None
    if wid in goals:
        op, g = goals[wid]
        s["goal"] = f"{op} {g:g}x"
        s["met"] = None if s["ratio"] is None else (s["ratio"] >= g if op == ">=" else s["ratio"] <= g)
    summary.append(s)

meta = {k.lower(): os.environ[k] for k in ("MACHINE", "R_VERSION", "RSERVE_VERSION", "RGATE_BIN", "RGATE_ARGS", "WORKERS", "SECONDS_PER_RUN", "ROUNDS", "ELAPSED", "LOADAVG", "COMMAND")}
json.dump({"meta": meta, "summary": summary, "runs": runs}, open(os.environ["OUT"], "w"), indent=1)

def n(x, fmt="{:,.0f}"):
    return "n/a" if x is None else fmt.format(x)
print(f"rgate vs Rserve {meta['rserve_version']} (QAP1), R {meta['r_version']}, {meta['machine']}; "
      f"median of {meta['rounds']} alternating rounds, {meta['seconds_per_run']} s per run; "
      f"rgate --workers {meta['workers']} {meta['rgate_args']}; load average at the end {meta['loadavg']}; {meta['elapsed']} s")
print()
print("| id | workload | rgate rps | rgate p50 µs | rgate p99 µs | Rserve rps | Rserve p50 µs | Rserve p99 µs | ratio | goal | rgate CPU µs/req | Rserve CPU µs/req | CPU ratio |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|")
for s in summary:
    goal = "" if "goal" not in s else f"{s['goal']} {'✅' if s['met'] else '❌' if s['met'] is False else '?'}"
    if s["workload"] == "M1":
        a, b = s["rgate"], s["rserve"]
        print(f"| M1 | {s['description']} | {n(a['mb_per_session'], '{:.2f}')} MB/session | | | {n(b['mb_per_session'], '{:.2f}')} MB/session | | | "
              f"{n(s['ratio'], '{:.2f}')}× | {goal} | | | |")
        continue
    a, b = s["rgate"], s["rserve"]
    flag = "" if s["same_reply_size"] else f" ⚠ reply sizes differ ({n(a['bytes_per_reply'])} vs {n(b['bytes_per_reply'])} B)"
    errs = ""
    if a["errors"] or b["errors"] or a["failed_runs"] or b["failed_runs"]:
        errs = f" (errors: rgate {a['errors']}/{a['failed_runs']} failed runs, Rserve {b['errors']}/{b['failed_runs']})"
    print(f"| {s['workload']} | {s['description']}{flag}{errs} | {n(a['rps'])} | {n(a['p50_us'], '{:,.1f}')} | {n(a['p99_us'], '{:,.1f}')} | "
          f"{n(b['rps'])} | {n(b['p50_us'], '{:,.1f}')} | {n(b['p99_us'], '{:,.1f}')} | {n(s['ratio'], '{:.2f}')}× | {goal} | "
          f"{n(a['cpu_us_per_request'], '{:,.1f}')} | {n(b['cpu_us_per_request'], '{:,.1f}')} | {n(s['cpu_ratio'], '{:.2f}')}× |")
m = next((s for s in summary if s["workload"] == "M1"), None)
if m:
    a, b = m["rgate"], m["rserve"]
    print()
    print(f"M1 detail: rgate tree {n(a['pss_idle_mb'], '{:.1f}')} MB / {n(a['procs_idle'])} processes idle -> "
          f"{n(a['pss_held_mb'], '{:.1f}')} MB / {n(a['procs_held'])} with sessions held; Rserve {n(b['pss_idle_mb'], '{:.1f}')} MB / "
          f"{n(b['procs_idle'])} -> {n(b['pss_held_mb'], '{:.1f}')} MB / {n(b['procs_held'])}; per-round MB/session rgate "
          f"{[round(x, 2) for x in a['rounds']]}, Rserve {[round(x, 2) for x in b['rounds']]}")
print()
print("ratio = rgate rps / Rserve rps (median of rounds). CPU µs/req = CPU time of the server's whole process tree "
      "(supervisor, zygote, sessions / Rserve and its children) during the run, per request; CPU ratio = Rserve CPU / "
      "rgate CPU (> 1: rgate spends less CPU per request). The CPU figures are less sensitive to other load on the machine.")
print(f"(all runs: {os.environ['OUT']})")
PY
