#!/usr/bin/env python3
"""Where a fresh rgate session's cost goes: CPU per session by process role, and the
page faults and latency of the first request in a new session against later ones.

Usage:
  Benchmarks/session-cost.py RGATE_BIN [--protocol text|qap1] [--seconds 5] [--connections 1,8]
                             [--samples 10] [-- extra serve arguments, e.g. --workers 8]
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 Benchmarks/session-cost.py ...   # env reaches the zygote

It starts `RGATE_BIN serve --text-port 0 --qap-port off --log-level warning [extra]` (with
`--protocol qap1`: `--text-port off --qap-port 0`, and Benchmarks/qapload instead of textload:
P2's sessions rather than P6's) in its own process group, then:
 1. for each connection count: runs Benchmarks/textload in fresh mode (one connection per
    request) and reads /proc before and after, giving CPU microseconds per session spent in
    the supervisor, the zygote (forking replacements) and the session processes themselves
    (the zygote's reaped children: cutime/cstime), plus rps and latency;
 2. opens `--samples` connections one at a time (with pauses, so the pool is full) and
    sends three requests on each, reading the serving session's minor-fault count from /proc
    between them: what the first request in a new process costs beyond a warm one.
With --perf (needs perf, Debian's linux-perf, and root or perf_event_paranoid <= 1) it also
 3. counts the zygote's memory mappings (each one is copied by every fork and torn down by
    every exit: see Benchmarks/forkfloor),
 4. samples every CPU with call graphs during a fresh-mode run and splits the session
    processes' CPU by kernel path (exit teardown, copy-on-write, file-page faults, system
    calls, user code),
 5. records every user page fault of the session processes during --fault-requests fresh
    sessions and counts them per session by what they hit (R's heap written, library code
    run, the stack, ...): the pages a session copies from the zygote.
Needs Linux /proc, cc (to build textload and qapload) and python3. Ends the server it started.
"""
import argparse
import bisect
import json
import os
import re
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
# QAP1 eval of "1+1": header (command, length, offset, length high), one DT_STRING parameter.
QAP_REQUEST = struct.pack("<IIII", 0x003, 8, 0, 0) + struct.pack("<I", 4 | 4 << 8) + b"1+1\0"

# Per protocol: the serve arguments, the line that names the port, the load generator.
PROTOCOLS = {
    "text": {"serve": ["--text-port", "0", "--qap-port", "off"], "listening": "rgate: listening text ",
             "tool": "textload"},
    "qap1": {"serve": ["--text-port", "off", "--qap-port", "0"], "listening": "rgate: listening qap1 ",
             "tool": "qapload"},
}


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


def request(sock, protocol):
    if protocol == "qap1":
        sock.sendall(QAP_REQUEST)
        command, length, _, high = struct.unpack("<IIII", recv_exact(sock, 16))
        reply = recv_exact(sock, length | high << 32)
        if command != 0x10001 or struct.pack("<d", 2.0) not in reply:
            raise RuntimeError(f"unexpected reply {command:#x} {reply!r}")
        return
    sock.sendall(REQUEST)
    (length,) = struct.unpack("<Q", recv_exact(sock, 8))
    reply = recv_exact(sock, length)
    if b"[1] 2" not in reply:
        raise RuntimeError(f"unexpected reply {reply!r}")


def load(tool, protocol, port, connections=1, seconds=None, requests=None, warmup=0):
    """The load generator's command line: fresh sessions, one request each."""
    if protocol == "qap1":
        cmd = [tool, "fresh", "--port", str(port), "--connections", str(connections)]
    else:
        cmd = [tool, "--port", str(port), "--mode", "fresh", "--connections", str(connections), "--expect", "[1] 2"]
    cmd += ["--duration", str(seconds)] if seconds is not None else ["--requests", str(requests)]
    return cmd + (["--warmup", str(warmup)] if warmup else [])


def start(binary, protocol, extra, logdir):
    log = open(os.path.join(logdir, "rgate.log"), "w+")
    proc = subprocess.Popen([binary, "serve", *PROTOCOLS[protocol]["serve"], "--log-level", "warning", *extra],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(PROTOCOLS[protocol]["listening"]):
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


def cpu_split(tool, protocol, supervisor, zygote, port, connections, seconds):
    s0, z0 = stat(supervisor), stat(zygote)
    out = subprocess.run(load(tool, protocol, port, connections, seconds=seconds, warmup=20),
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


def first_vs_later(zygote, protocol, port, samples):
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
        if protocol == "qap1":
            recv_exact(sock, 32)  # the server's identification, then the request
        request(sock, protocol)
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
        request(sock, protocol)
        t3 = time.perf_counter()
        after2 = stat(serving)[0] if serving else None
        sock.close()
        if serving:
            rows.append((after1 - before[serving], after2 - after1, (t1 - t0) * 1e6, (t3 - t2) * 1e6))
    return rows


def perf_available():
    try:
        return subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def mappings(pid):
    """[(start, end, perms, name)] of pid's memory mappings."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            p = line.split()
            a, b = (int(x, 16) for x in p[0].split("-"))
            out.append((a, b, p[1], p[5] if len(p) > 5 else ""))
    return sorted(out)


# Kernel paths a session process spends CPU in, matched against its call chains in this order.
PATHS = [
    ("exit: unmapping memory", ("exit_mmap",)),
    ("exit: rest", ("do_exit", "do_group_exit")),
    ("copy-on-write faults", ("do_wp_page", "do_huge_pmd_wp_page", "__split_huge_pmd", "wp_page_copy")),
    ("faults on library code/data", ("filemap_map_pages", "do_read_fault", "do_fault")),
    ("other page faults", ("exc_page_fault", "asm_exc_page_fault")),
    ("system calls", ("do_syscall_64",)),
]


def cpu_paths(tool, protocol, port, seconds, tmp):
    data = os.path.join(tmp, "cpu.data")
    rec = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-a", "-o", data, "--", "sleep", str(seconds + 1)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run(load(tool, protocol, port, seconds=seconds), capture_output=True)
    rec.wait()
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"], capture_output=True, text=True).stdout
    by_comm, paths, total = {}, {}, 0
    for sample in script.split("\n\n"):
        lines = [l.strip() for l in sample.strip().splitlines()]
        if not lines:
            continue
        comm = lines[0].split()[0]
        total += 1
        by_comm[comm] = by_comm.get(comm, 0) + 1
        if comm != "rgate-session":
            continue
        frames = {l.split()[-1] for l in lines[1:] if l}
        name = next((n for n, keys in PATHS if frames.intersection(keys)), "user code")
        paths[name] = paths.get(name, 0) + 1
    return total, by_comm, paths


def fault_sources(tool, protocol, port, zygote, requests, tmp):
    maps = mappings(zygote)
    starts = [m[0] for m in maps]
    data = os.path.join(tmp, "faults.data")
    subprocess.run(["perf", "record", "-e", "exceptions:page_fault_user", "-a", "-o", data, "--",
                    *load(tool, protocol, port, requests=requests)], capture_output=True)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,trace"], capture_output=True, text=True).stdout
    counts, pids = {}, set()
    for line in script.splitlines():
        m = re.search(r"(\d+)\s+address=0x([0-9a-f]+) ip=0x[0-9a-f]+ error_code=0x([0-9a-f]+)", line)
        if not m or "rgate-" not in line:
            continue
        pid, address, code = int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)
        if pid == zygote:
            continue
        pids.add(pid)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < maps[i][1]:
            name = maps[i][3] or "anonymous"
            name = name if name.startswith("[") or name == "anonymous" else os.path.basename(name)
        else:
            name = "new memory"
        kind = "run" if code & 0x10 else ("written" if code & 2 else "read")
        counts[(name, kind)] = counts.get((name, kind), 0) + 1
    return len(pids), counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="text",
                    help="fresh sessions of the text protocol (P6) or of QAP1 (P2)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", default="1,8")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--perf", action="store_true", help="also profile with perf (mappings, kernel paths, page faults)")
    ap.add_argument("--fault-requests", type=int, default=300)
    ap.add_argument("extra", nargs="*", help="extra `rgate serve` arguments (after --)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="session-cost.") as tmp:
        name = PROTOCOLS[args.protocol]["tool"]
        tool = os.path.join(tmp, name)
        subprocess.run(["cc", "-O2", "-o", tool, os.path.join(HERE, name, f"{name}.c"), "-lpthread"], check=True)
        proc, port, zygote = start(os.path.abspath(args.binary), args.protocol, args.extra, tmp)
        try:
            with open(f"/proc/{zygote}/status") as f:
                mem = {k: v.strip() for k, v in (l.split(":", 1) for l in f) if k in ("VmRSS", "RssAnon", "VmPTE")}
            huge = "?"
            try:
                with open(f"/proc/{zygote}/smaps_rollup") as f:
                    huge = next((l.split(":", 1)[1].strip() for l in f if l.startswith("AnonHugePages")), "?")
            except OSError:
                pass
            print(f"rgate {args.binary} {' '.join(args.extra)}; {args.protocol} sessions; zygote pid {zygote}: RSS {mem.get('VmRSS')}, "
                  f"anon {mem.get('RssAnon')}, of which huge pages {huge}, page tables {mem.get('VmPTE')}")
            print(f"load average now: {open('/proc/loadavg').read().split()[:3]} (other work skews these figures)")
            print()
            print("fresh mode, CPU microseconds per session (supervisor / zygote fork / session process):")
            for c in [int(x) for x in args.connections.split(",") if x]:
                result, cpu = cpu_split(tool, args.protocol, proc.pid, zygote, port, c, args.seconds)
                print(f"  {c:>2} conn: rps {result['rps']:7.0f}  p50 {result['p50_us']:6.0f} us  p99 {result['p99_us']:6.0f} us"
                      f"  | cpu/session: supervisor {cpu['supervisor']:5.0f}  zygote {cpu['zygote (fork)']:5.0f}"
                      f"  session {cpu['session']:5.0f} (user {cpu['session user']:.0f}, sys {cpu['session sys']:.0f})"
                      f"  total {cpu['supervisor'] + cpu['zygote (fork)'] + cpu['session']:5.0f}")
            rows = first_vs_later(zygote, args.protocol, port, args.samples)
            if rows:
                med = lambda i: statistics.median(r[i] for r in rows)
                print()
                print(f"one request at a time ({len(rows)} connections, pool full):")
                print(f"  1st request (connect to reply): p50 {med(2):6.0f} us, min {min(r[2] for r in rows):6.0f} us,"
                      f" minor faults in the session: {med(0):.0f}")
                print(f"  2nd request, same connection  : p50 {med(3):6.0f} us, min {min(r[3] for r in rows):6.0f} us,"
                      f" minor faults in the session: {med(1):.0f}")
            if args.perf:
                if not perf_available():
                    print("\n--perf: perf is not usable here (install linux-perf; needs root or perf_event_paranoid <= 1)")
                else:
                    maps = mappings(zygote)
                    print(f"\nthe zygote has {len(maps)} memory mappings; every fork copies and every exit tears down each")
                    total, by_comm, paths = cpu_paths(tool, args.protocol, port, args.seconds, tmp)
                    print(f"CPU samples on all CPUs during a {args.seconds:g} s fresh-mode run, by process:")
                    for comm, n in sorted(by_comm.items(), key=lambda kv: -kv[1])[:6]:
                        print(f"  {comm:<16} {n / total * 100:5.1f}%")
                    spent = sum(paths.values()) or 1
                    print("session processes' CPU by path:")
                    for name, n in sorted(paths.items(), key=lambda kv: -kv[1]):
                        print(f"  {name:<30} {n / spent * 100:5.1f}%")
                    sessions, counts = fault_sources(tool, args.protocol, port, zygote, args.fault_requests, tmp)
                    if sessions:
                        print(f"user page faults per session ({sessions} fresh sessions), by what they hit:")
                        for (name, kind), n in sorted(counts.items(), key=lambda kv: -kv[1])[:12]:
                            print(f"  {n / sessions:7.1f}  {name} {kind}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
