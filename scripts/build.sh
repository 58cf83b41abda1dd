#!/usr/bin/env bash
# Install dependencies, configure and build botbus.
#   BUILD_DIR          build directory, relative to the repo root (default: build)
#   BOTBUS_CMAKE_ARGS  extra arguments for the cmake configure step
#   BUILD_TARGETS      build only these targets (default: all)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

BUILD_DIR="${BUILD_DIR:-build}"

bash "$repo_root/scripts/setup.sh"

# Word splitting of BOTBUS_CMAKE_ARGS is intended: it holds several arguments.
read -r -a extra_args <<<"${BOTBUS_CMAKE_ARGS:-}"

cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBOTBUS_WERROR=ON \
  "${extra_args[@]}"
read -r -a targets <<<"${BUILD_TARGETS:-}"
if ((${#targets[@]} > 0)); then
  cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}"
else
  cmake --build "$BUILD_DIR" -j2
fi
