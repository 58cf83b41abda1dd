#!/usr/bin/env bash
# Makes Prometheus's promtool available to the tests without installing the
# `prometheus` package, whose installation would also enable and start a
# Prometheus server (listening on every interface) on a host with systemd.
# The package is downloaded and unpacked under .tools/ in the checkout (one
# copy for every build directory: the plain, sanitizer and TSan suites all
# run the metrics test); the path of promtool is printed. Does nothing when
# it is there already.
#   bash scripts/promtool.sh   ->   .tools/usr/bin/promtool
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo_root/.tools"
promtool="$tools/usr/bin/promtool"
if [[ -x "$promtool" ]]; then
  echo "$promtool"
  exit 0
fi

mkdir -p "$tools/download"
cd "$tools/download"
if ! apt-get download prometheus >/dev/null 2>&1; then
  # No package lists yet (a fresh machine): fetch them, as apt-install.sh does.
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
  apt-get download prometheus >/dev/null
fi
dpkg-deb -x prometheus_*.deb "$tools"
rm -f prometheus_*.deb "$tools/usr/bin/prometheus"  # the server itself is not needed
"$promtool" --version >/dev/null
echo "$promtool"
