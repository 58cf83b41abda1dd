#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing
# (the way setup.sh installs the build dependencies); does nothing, not even
# apt-get update, when all are installed.
#   bash scripts/apt-install.sh clang-14 libclang-rt-14-dev
set -euo pipefail

missing=()
for pkg in "$@"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

echo "apt-install: installing missing packages: ${missing[*]}"
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "apt-install: not root and sudo is not available; install as root: ${missing[*]}" >&2
    exit 1
  fi
fi
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
