#!/usr/bin/env bash
# Debian packages the test suite drives as real servers (see tests/sysdeps.py).
# `make test` runs this first: a missing program is installed with apt-get when we are
# root and apt-get exists; otherwise one line says what to install. Under CI=true a
# program that could not be installed fails the run (tests never skip there).
set -uo pipefail

# program (as looked up on PATH and in /usr/sbin) → Debian package(s), the first that installs
PACKAGES=(
  "chromium:chromium"
  "nginx:nginx"
  "prometheus:prometheus"
  "promtool:prometheus"
  "smtp-sink:postfix"
  "smtp-source:postfix"
  "wrk:wrk"
  "redis-server:redis-server"
  "kubectl:kubectl|kubernetes-client"
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for pair in "${PACKAGES[@]}"; do
  program=${pair%%:*}
  have "$program" || missing+=("$pair")
done
[ ${#missing[@]} -eq 0 ] && exit 0

can_install=false
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  can_install=true
  export DEBIAN_FRONTEND=noninteractive
  echo "installing Debian packages for the tests: ${missing[*]#*:}" >&2
  apt-get update -qq >/dev/null 2>&1
fi

failed=()
for pair in "${missing[@]}"; do
  program=${pair%%:*} candidates=${pair#*:}
  if $can_install; then
    IFS='|' read -ra options <<<"$candidates"
    for package in "${options[@]}"; do
      have "$program" && break
      apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1
    done
  fi
  have "$program" || failed+=("${candidates%%|*}")
done
[ ${#failed[@]} -eq 0 ] && exit 0

echo "tests that need them will be skipped; install them with: sudo apt-get install ${failed[*]}" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
