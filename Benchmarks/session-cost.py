#!/usr/bin/env python3
"""Where a fresh rgate session's cost goes: CPU per session by process role, and the
page faults and latency of the first request in a new session against later ones.

Usage:
  Benchmarks/session-cost.py RGATE_BIN [--seconds 5] [--connections 1,8] [--samples 10]
                             [-- extra serve arguments, e.g. --workers 8]
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 Benchmarks/session-cost.py ...   # env reaches the zygote

It starts `RGATE_BIN serve --text-port 0 --log-level warning [extra]` in its own process
group, then:
 1. for each connection count: runs Benchmarks/textload in fresh mode (one connection per
    request) and reads /proc before and after, giving CPU microseconds per session spent in
    the supervisor, the zygote (forking replacements) and the session processes themselves
    (the zygote's reaped children: cutime/cstime), plus rps and latency;
 2. opens `--samples` connections one at a time (with pauses, so the pool is full) and
    sends three requests on each, reading the serving session's minor-fault count from /proc
    between them: what the first request in a new process costs beyond a warm one.
Needs Linux /proc, cc (to build textload) and python3. Ends the server it started.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")
REQUEST = b"UTF-8\n" + struct.pack("<Q", 3) + b"1+1"


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def stat(pid):
    """(minflt, utime, stime, cutime, cstime) of pid, times in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[11]), int(fields[12]), int(fields[13]), int(fields[14])


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def request(sock):
    sock.sendall(REQUEST)
    (length,) = struct.unpack("<Q", recv_exact(sock, 8))
    reply = recv_exact(sock, length)
    if b"[1] 2" not in reply:
        raise RuntimeError(f"unexpected reply {reply!r}")


def start(binary, extra, logdir):
    log = open(os.path.join(logdir, "rgate.log"), "w+")
    proc = subprocess.Popen([binary, "serve", "--text-port", "0", "--log-level", "warning", *extra],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("rgate: listening text "):
            port = int(line.rsplit(":", 1)[1])
            zygotes = [c for c in children(proc.pid) if b"worker" in open(f"/proc/{c}/cmdline", "rb").read()]
            if zygotes:
                time.sleep(1.0)  # let the pool fill
                return proc, port, zygotes[0]
    log.seek(0)
    sys.exit(f"session-cost: rgate did not start:\n{log.read()[-2000:]}")


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def cpu_split(textload, supervisor, zygote, port, connections, seconds):
    s0, z0 = stat(supervisor), stat(zygote)
    out = subprocess.run([textload, "--port", str(port), "--mode", "fresh", "--connections", str(connections),
                          "--duration", str(seconds), "--warmup", "20", "--expect", "[1] 2"],
                         capture_output=True, text=True, timeout=seconds + 90).stdout
    time.sleep(0.5)  # the last sessions exit and are reaped
    s1, z1 = stat(supervisor), stat(zygote)
    result = json.loads(out)
    n = max(result["requests"] + 20, 1)  # warm-up requests start sessions too
    per = lambda ticks: ticks * TICK_US / n
    return result, {
        "supervisor": per(s1[1] + s1[2] - s0[1] - s0[2]),
        "zygote (fork)": per(z1[1] + z1[2] - z0[1] - z0[2]),
        "session": per(z1[3] + z1[4] - z0[3] - z0[4]),
        "session user": per(z1[3] - z0[3]),
        "session sys": per(z1[4] - z0[4]),
    }


def first_vs_later(zygote, port, samples):
    rows = []
    for _ in range(samples):
        time.sleep(0.3)
        before = {}
        for pid in children(zygote):
            try:
                before[pid] = stat(pid)[0]
            except FileNotFoundError:
                pass
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        request(sock)
        t1 = time.perf_counter()
        serving, after1 = None, None
        for pid, faults in before.items():
            try:
                now = stat(pid)[0]
            except FileNotFoundError:
                continue
            if now != faults:
                serving, after1 = pid, now
        t2 = time.perf_counter()
        request(sock)
        t3 = time.perf_counter()
        after2 = stat(serving)[0] if serving else None
        sock.close()
        if serving:
            rows.append((after1 - before[serving], after2 - after1, (t1 - t0) * 1e6, (t3 - t2) * 1e6))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", default="1,8")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("extra", nargs="*", help="extra `rgate serve` arguments (after --)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="session-cost.") as tmp:
        textload = os.path.join(tmp, "textload")
        subprocess.run(["cc", "-O2", "-o", textload, os.path.join(HERE, "textload", "textload.c"), "-lpthread"],
                       check=True)
        proc, port, zygote = start(os.path.abspath(args.binary), args.extra, tmp)
        try:
            with open(f"/proc/{zygote}/status") as f:
                mem = {k: v.strip() for k, v in (l.split(":", 1) for l in f) if k in ("VmRSS", "RssAnon", "VmPTE")}
            huge = "?"
            try:
                with open(f"/proc/{zygote}/smaps_rollup") as f:
                    huge = next((l.split(":", 1)[1].strip() for l in f if l.startswith("AnonHugePages")), "?")
            except OSError:
                pass
            print(f"rgate {args.binary} {' '.join(args.extra)}; zygote pid {zygote}: RSS {mem.get('VmRSS')}, "
                  f"anon {mem.get('RssAnon')}, of which huge pages {huge}, page tables {mem.get('VmPTE')}")
            print(f"load average now: {open('/proc/loadavg').read().split()[:3]} (other work skews these figures)")
            print()
            print("fresh mode, CPU microseconds per session (supervisor / zygote fork / session process):")
            for c in [int(x) for x in args.connections.split(",") if x]:
                result, cpu = cpu_split(textload, proc.pid, zygote, port, c, args.seconds)
                print(f"  {c:>2} conn: rps {result['rps']:7.0f}  p50 {result['p50_us']:6} us  p99 {result['p99_us']:6} us"
                      f"  | cpu/session: supervisor {cpu['supervisor']:5.0f}  zygote {cpu['zygote (fork)']:5.0f}"
                      f"  session {cpu['session']:5.0f} (user {cpu['session user']:.0f}, sys {cpu['session sys']:.0f})"
                      f"  total {cpu['supervisor'] + cpu['zygote (fork)'] + cpu['session']:5.0f}")
            rows = first_vs_later(zygote, port, args.samples)
            if rows:
                med = lambda i: statistics.median(r[i] for r in rows)
                print()
                print(f"one request at a time ({len(rows)} connections, pool full):")
                print(f"  1st request (connect to reply): p50 {med(2):6.0f} us, min {min(r[2] for r in rows):6.0f} us,"
                      f" minor faults in the session: {med(0):.0f}")
                print(f"  2nd request, same connection  : p50 {med(3):6.0f} us, min {min(r[3] for r in rows):6.0f} us,"
                      f" minor faults in the session: {med(1):.0f}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
