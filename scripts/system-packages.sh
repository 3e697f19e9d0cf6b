#!/usr/bin/env bash
# Debian packages the test suite drives as real servers (see tests/sysdeps.py).
# `make test` runs this first: a missing program is installed with apt-get when we are
# root and apt-get exists; otherwise one line says what to install. Under CI=true a
# package that could not be installed fails the run (tests never skip there).
set -uo pipefail

# program (as looked up on PATH and in /usr/sbin) → Debian package
PACKAGES=(
  "chromium:chromium"
  "nginx:nginx"
  "prometheus:prometheus"
  "promtool:prometheus"
  "smtp-sink:postfix"
  "wrk:wrk"
  "redis-server:redis-server"
  "kubectl:kubernetes-client"
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for pair in "${PACKAGES[@]}"; do
  program=${pair%%:*} package=${pair#*:}
  if ! have "$program"; then
    case " ${missing[*]-} " in *" $package "*) ;; *) missing+=("$package") ;; esac
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages for the tests: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "apt-get could not install: ${missing[*]}" >&2
fi
echo "tests that need them will be skipped; install them with: sudo apt-get install ${missing[*]}" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
