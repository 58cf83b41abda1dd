#!/usr/bin/env bash
# Install the Debian 12 packages botbus needs to build and test.
# Does nothing (no apt-get update) when everything is already installed.
set -euo pipefail

packages=(
  build-essential
  cmake
  ninja-build
  pkg-config
  libboost-dev
  libboost-program-options-dev
  libsqlitecpp-dev
  libsqlite3-dev
  libpq-dev
  postgresql
  libssl-dev
  libzmq3-dev
  cppzmq-dev
  libmsgpack-cxx-dev
  libspdlog-dev
  libgtest-dev
  libsystemd-dev
  nlohmann-json3-dev
)

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#packages[@]} build dependencies are installed"
  exit 0
fi

echo "setup: installing missing packages: ${missing[*]}"

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: not root and sudo is not available; install as root: ${missing[*]}" >&2
    exit 1
  fi
fi

"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
