#!/usr/bin/env bash
# Build botbus and run the whole test suite (unit + end-to-end).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export BUILD_DIR="${BUILD_DIR:-build}"

bash "$repo_root/scripts/build.sh"
# The end-to-end tests run the Python bot of docs/PROTOCOL.md as written, and
# pytest runs the Python client's tests (clients/python/tests; venv, setuptools
# and wheel let one of them pip-install the package as a user would).
bash "$repo_root/scripts/apt-install.sh" python3 python3-zmq python3-msgpack python3-pytest \
    python3-venv python3-setuptools python3-wheel
# The metrics test lints a real scrape with promtool (from Debian's prometheus package).
bash "$repo_root/scripts/promtool.sh" >/dev/null
# A real PostgreSQL server for the PostgreSQL store's tests (scripts/postgres.sh:
# a throwaway cluster on a Unix socket, stopped on exit); they fail rather
# than skip when it is missing.
eval "$(bash "$repo_root/scripts/postgres.sh" start)"
trap 'bash "$repo_root/scripts/postgres.sh" stop "$BOTBUS_TEST_POSTGRES_DIR"' EXIT
export BOTBUS_REQUIRE_POSTGRES=1
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 300
# The installed systemd unit: verify and the hardening score.
bash "$repo_root/scripts/check-unit.sh"
