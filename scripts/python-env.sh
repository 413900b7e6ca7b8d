#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv that the benchmarks use to run the seed
# server (rpy2) and the Rserve client tests (pyRserve + pytest, Tests/clients).
# Idempotent: a venv that already has the pinned versions is left as it is.
#
# Usage:
#   scripts/python-env.sh            # prints the venv path on its last line
#   VENV=$(scripts/python-env.sh | tail -n 1)
#   "$VENV/bin/python" -c 'import rpy2.robjects as r; print(r.r("1+1"))'
#   "$VENV/bin/python" -m pytest Tests/clients -q     # client compatibility tests
#
# Environment:
#   RGATE_VENV     where the venv lives (default: $HOME/.cache/rgate/venv)
#   RGATE_PYTHON   the interpreter that creates it (default: python3)
#
# Needs: R with its headers (Debian: r-base-core, r-base-dev), a C compiler, and
# python3 with the venv module. rpy2 is built from source against the R found on
# PATH (`R RHOME`); its build also needs libffi, which is looked for but not required
# (rpy2 falls back to ABI mode without it).
#
# Running rpy2: on Debian nothing extra is needed, because rpy2 asks `R RHOME` at
# import time and libR.so is on the default library path (/usr/lib/R/lib via
# ld.so.conf.d). If R is elsewhere, or `R` is not on PATH, set
#   R_HOME=$(R RHOME)  LD_LIBRARY_PATH=$(R RHOME)/lib
# before starting Python. This script exports R_HOME itself for the build and check.
set -euo pipefail

venv=${RGATE_VENV:-$HOME/.cache/rgate/venv}
python=${RGATE_PYTHON:-python3}
rpy2_version=3.5.17
pyrserve_version=1.0.4
pytest_version=8.3.4
pytest_timeout_version=2.3.1
pluggy_version=1.5.0
iniconfig_version=2.0.0

log() { printf 'python-env: %s\n' "$*" >&2; }

command -v R >/dev/null 2>&1 || { log "R is not on PATH (install r-base-core and r-base-dev)"; exit 1; }
R_HOME=$(R RHOME)
export R_HOME
[ -f "$R_HOME/include/Rinternals.h" ] || [ -f /usr/share/R/include/Rinternals.h ] \
  || { log "R headers not found (install r-base-dev)"; exit 1; }
command -v "$python" >/dev/null 2>&1 || { log "$python not found"; exit 1; }

# A venv whose interpreter vanished (e.g. the base Python was removed) is rebuilt.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "removing broken venv at $venv"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  log "creating venv at $venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi

# Already complete? Then do nothing (no network).
if "$venv/bin/python" - "$rpy2_version" "$pyrserve_version" "$pytest_version" "$pytest_timeout_version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import numpy
assert version("rpy2") == sys.argv[1], "rpy2"
assert version("pyRserve") == sys.argv[2], "pyRserve"
assert version("pytest") == sys.argv[3], "pytest"
assert version("pytest-timeout") == sys.argv[4], "pytest-timeout"
assert int(numpy.__version__.split(".")[0]) < 2, "numpy"
import rpy2.robjects as ro
assert ro.r("1+1")[0] == 2
import pyRserve
PY
then
  log "venv is complete"
else
  log "installing rpy2==$rpy2_version pyRserve==$pyrserve_version numpy<2 pytest==$pytest_version (rpy2 compiles against R)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  "$venv/bin/python" -m pip install --quiet \
    "rpy2==$rpy2_version" "pyRserve==$pyrserve_version" "numpy<2" \
    "pytest==$pytest_version" "pytest-timeout==$pytest_timeout_version" \
    "pluggy==$pluggy_version" "iniconfig==$iniconfig_version"
  "$venv/bin/python" -c 'import rpy2.robjects as ro, pyRserve; assert ro.r("1+1")[0] == 2' \
    || { log "rpy2 installed but cannot evaluate R (try R_HOME=\$(R RHOME) LD_LIBRARY_PATH=\$(R RHOME)/lib)"; exit 1; }
  log "venv ready"
fi

echo "$venv"
