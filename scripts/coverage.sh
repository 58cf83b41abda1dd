#!/usr/bin/env bash
# Line and branch coverage of the whole suite, per folder.
#   BUILD_DIR   build directory (default: build-coverage)
# Builds with gcov instrumentation, runs every test (test daemons are ended
# with SIGTERM, so they write their counts), then prints one gcovr summary
# per folder. Branches that only exist for exceptions the compiler inserts
# (throw/unwind edges) and unreachable ones are left out of the branch
# figure; every branch the code itself writes is counted.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export BUILD_DIR="${BUILD_DIR:-build-coverage}"

bash "$repo_root/scripts/setup.sh"
if ! command -v gcovr >/dev/null 2>&1; then
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcovr
fi

BOTBUS_CMAKE_ARGS="-DBOTBUS_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug ${BOTBUS_CMAKE_ARGS:-}" \
  bash "$repo_root/scripts/build.sh"

find "$BUILD_DIR" -name '*.gcda' -delete
ctest --test-dir "$BUILD_DIR" -j2 --timeout 300 --output-on-failure || echo "coverage: some tests failed; the figures below still count what ran" >&2

tracefile="$BUILD_DIR/coverage.json"
gcovr --root . --object-directory "$BUILD_DIR" \
  --filter 'store/' --filter 'bus/' --filter 'client/' --filter 'daemon/' \
  --exclude-throw-branches --exclude-unreachable-branches \
  --json "$tracefile"

# The summary follows the per-file table on stdout; only the summary is
# kept. (Never --output /dev/null: gcovr replaces its output file, and as
# root that turns /dev/null into a regular file.)
for folder in store bus client daemon; do
  echo "== $folder/"
  gcovr --add-tracefile "$tracefile" --filter "$folder/" --print-summary | grep -E '^(lines|branches):'
done
echo "== per file: gcovr --add-tracefile $tracefile --filter FOLDER/ --txt"
