"""Fixtures: an rgate server (RGATE_BIN, default /work/main/.build/debug/rgate) and a real
Rserve, each on a free port, both stopped with everything they started at teardown (also
when a test fails). See clientsupport.py for the process handling."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import clientsupport as cs


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def _stop_and_check(server: cs.ServerProcess) -> None:
    leaked = server.stop()
    assert not leaked, (
        f"{server.name}: processes {leaked} outlived SIGTERM plus the grace period (killed now); "
        f"log tail:\n{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def rgate(log_dir) -> cs.ServerProcess:
    """One rgate for the whole run: every connection is its own R session anyway."""
    server = cs.start_rgate(log_dir)
    try:
        yield server
    finally:
        _stop_and_check(server)


@pytest.fixture(scope="session")
def rserve(log_dir) -> cs.ServerProcess:
    try:
        server = cs.start_rserve(log_dir)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield server
    finally:
        server.stop()  # Rserve's own children may outlive it (documented); they are killed here


@pytest.fixture
def start_server(log_dir):
    """Factory for a private server (for tests that stop or disturb it): start_server('rgate', *args)."""
    started: list[cs.ServerProcess] = []

    def start(kind: str, *extra: str) -> cs.ServerProcess:
        if kind == "rgate":
            server = cs.start_rgate(log_dir, tuple(extra), name="rgate-private")
        else:
            try:
                server = cs.start_rserve(log_dir, tuple(extra), name="rserve-private")
            except FileNotFoundError as e:
                pytest.skip(str(e))
        started.append(server)
        return server

    yield start
    errors = []
    for server in started:
        leaked = server.stop()
        if leaked and server.name.startswith("rgate"):
            errors.append(f"{server.name}: leaked {leaked}")
    assert not errors, errors


@pytest.fixture(params=["rgate", "rserve"])
def server(request) -> cs.ServerProcess:
    """Runs a test against both servers (the Rserve run validates the test itself)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def connect():
    """pyRserve connections, closed at teardown: connect(port, **kwargs)."""
    opened = []

    def make(port: int, **kwargs):
        conn = cs.pyrserve_connect(port, **kwargs)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        if not conn.isClosed:
            conn.close()


@pytest.fixture
def conn(rgate, connect):
    """A pyRserve connection to the shared rgate."""
    return connect(rgate.port)


@pytest.fixture(scope="session")
def rsclient_available() -> None:
    r = subprocess.run(
        ["Rscript", "--vanilla", "-e", "library(RSclient)"], capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0:
        pytest.skip(f"RSclient is not installed (Debian: r-cran-rsclient): {r.stderr.strip()}")


# ---------------------------------------------------------------------------------------
# Differential results: every difference found is listed at the end of the run.

_DIFFERENCES: list[tuple[str, str, list[str]]] = []


@pytest.fixture
def differences() -> list:
    return _DIFFERENCES


def pytest_terminal_summary(terminalreporter):
    if not _DIFFERENCES:
        return
    tr = terminalreporter
    tr.section("Rserve vs rgate differences (xfail-marked ones are known bugs or deviations)")
    for name, code, diffs in _DIFFERENCES:
        tr.write_line(f"{name}: {code}")
        for d in diffs:
            tr.write_line(f"    {d}")
