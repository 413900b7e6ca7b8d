#!/usr/bin/env bash
# Installs what rgate needs to build and run, if missing: R (Debian's r-base-core and its
# headers, without recommended packages, plus jsonlite, which sessions use for JSON) and the
# tools the tests use (openssl makes test certificates; the rjson tests read rgate's JSON
# with jsonlite). Idempotent and quiet.
#
#   scripts/install-deps.sh            # runtime + build: R, headers, jsonlite
#   scripts/install-deps.sh --test     # also what the tests use (Rserve, RSclient, jsonlite, python3)
set -euo pipefail

packages=(r-base-core r-base-dev r-cran-jsonlite)
if [ "${1:-}" = "--test" ]; then
  packages+=(r-cran-rserve r-cran-rsclient r-cran-jsonlite python3 python3-venv procps openssl)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "install-deps: swift is not on PATH (Swift 6 toolchain needed)" >&2; exit 1; }
