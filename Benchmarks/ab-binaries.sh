#!/usr/bin/env bash
# A/B of two rgate binaries on one QAP1 workload: alternating rounds, a fresh server for every
# run, the same load generator (Benchmarks/qapload), and the CPU time of each server's whole
# process tree (supervisor, zygote, sessions, reaped children) per request, which moves less
# with other load on the machine than throughput does.
#
# Usage (from anywhere in the repo):
#   Benchmarks/ab-binaries.sh OLD_RGATE NEW_RGATE [MODE] [CODE] [CONNECTIONS] [ROUNDS]
#   Benchmarks/ab-binaries.sh /tmp/rgate-before .build-static/release/rgate fresh '1+1' 1 5   # P2
#   Benchmarks/ab-binaries.sh /tmp/rgate-before .build-static/release/rgate keep 'sum(1:1000)' 8 5   # P5
# MODE is a qapload mode (keep, fresh); defaults: fresh '1+1' 1 5. BENCH_SECONDS (default 3)
# sets the load per run; RGATE_ARGS adds `serve` arguments to both servers.
#
# Output: one line per run, then the medians of each side and their ratio (B / A for requests
# per second, A / B for CPU per request: > 1 means B is better).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 2 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
a=$(realpath "$1"); b=$(realpath "$2")
mode=${3:-fresh}; code=${4:-1+1}; conns=${5:-1}; rounds=${6:-5}
seconds=${BENCH_SECONDS:-3}
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "ab-binaries: not an executable: $bin" >&2; exit 2; }; done

work=$(mktemp -d /tmp/rgate-ab.XXXXXX)
server=""
cleanup() {
    [ -n "$server" ] && kill -TERM -- "-$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -o "$work/qapload" "$here/qapload/qapload.c" -lpthread

# CPU ticks (utime + stime + cutime + cstime) of every process in the group.
tree_ticks() {
    local total=0 fields
    for p in $(pgrep -g "$1"); do
        fields=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $fields
        total=$((total + ${12} + ${13} + ${14} + ${15}))
    done
    echo "$total"
}

run() { # binary -> "rps cpu_us_per_request"
    setsid "$1" serve --text-port off --qap-port 0 --log-level warning ${RGATE_ARGS:-} \
        > "$work/out" 2> "$work/err" < /dev/null &
    server=$!
    local port="" i
    for i in $(seq 300); do
        port=$(sed -n 's/^rgate: listening qap1 .*:\([0-9]*\)$/\1/p' "$work/out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "ab-binaries: $1 did not start: $(tail -3 "$work/err")" >&2; exit 1; }
    sleep 1.5 # the pool fills
    local t0 t1 out rps requests
    t0=$(tree_ticks "$server")
    out=$("$work/qapload" "$mode" --port "$port" --connections "$conns" --code "$code" --duration "$seconds")
    sleep 0.5 # the last sessions exit and are reaped
    t1=$(tree_ticks "$server")
    kill -TERM -- "-$server"; wait "$server" 2>/dev/null || true; server=""
    rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<< "$out")
    requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<< "$out")
    python3 -c "import os; print($rps, round(($t1 - $t0) * 1e6 / os.sysconf('SC_CLK_TCK') / max($requests, 1), 1))"
}

: > "$work/a"; : > "$work/b"
for r in $(seq 1 "$rounds"); do
    # The order flips every round, so neither side always runs on a warmer machine.
    if [ $((r % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
    for side in $order; do
        bin=$a; [ "$side" = b ] && bin=$b
        result=$(run "$bin")
        echo "$result" >> "$work/$side"
        read -r rps cpu <<< "$result"
        echo "round $r $side: $rps req/s, $cpu µs CPU/request"
    done
done
python3 - "$work/a" "$work/b" "$a" "$b" "$mode $code, $conns connection(s), $rounds rounds of ${seconds} s" <<'EOF'
import statistics, sys
a = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
b = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
med = lambda rows, i: statistics.median(r[i] for r in rows)
print(f"\n{sys.argv[5]}")
print(f"A {sys.argv[3]}: {med(a, 0):,.0f} req/s, {med(a, 1):,.1f} µs CPU/request (medians)")
print(f"B {sys.argv[4]}: {med(b, 0):,.0f} req/s, {med(b, 1):,.1f} µs CPU/request (medians)")
print(f"B/A: {med(b, 0) / med(a, 0):.2f}x requests/s; A/B: {med(a, 1) / med(b, 1):.2f}x CPU per request (> 1: B better)")
EOF
