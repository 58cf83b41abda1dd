#!/usr/bin/env bash
# Build botbus and run botbusd in the foreground with a data directory in
# the repo root. Extra arguments are passed to botbusd.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export BUILD_DIR="${BUILD_DIR:-build}"

bash "$repo_root/scripts/build.sh"
exec "$BUILD_DIR/daemon/botbusd" --data-dir ./botbus-data "$@"
