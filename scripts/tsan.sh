#!/usr/bin/env bash
# The threaded part of the suite under ThreadSanitizer, built with clang-14.
#   BUILD_DIR   build directory (default: build-tsan)
#   CTEST_ARGS  extra ctest arguments (e.g. "-R Crash")
#
# botbus has two threads besides the loop: the sync thread, which fdatasyncs
# the WAL (bus/server/sync_thread.hpp, store/sqlite/wal_file.hpp), and the
# checkpoint thread with its own SQLite connection
# (store/sqlite/checkpointer.hpp), and a backup's thread while one is written
# (bus/server/backups.hpp). They run only inside botbusd on a file
# database, so what TSan must see is botbusd under the end-to-end tests.
# Built and run: botbusd and every binary e2e_test starts (botbus,
# botbus-example-executor, the fault shim), e2e_test, server_test (the
# committer and fan-out the sync thread reports to) and store_test (the
# store on files, the checkpointer included). Left out: bus_test, whose
# handler and codec tests run on one thread (the ASan build and the fuzzers
# cover it); bench and the examples other than the executor; the Python
# client's and the Grafana dashboard's tests, which test Python and a JSON
# file (their daemons are exercised by the C++ tests under TSan, and timed
# waits in Python clients would only measure TSan's slowness).
#
# Every TSan report, from a test binary or from a botbusd a test started, is
# written to BUILD_DIR/tsan-reports/; the run fails when any is there, even
# if every test passed. Suppressions: scripts/tsan.supp (each entry says why).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export BUILD_DIR="${BUILD_DIR:-build-tsan}"
read -r -a ctest_args <<<"${CTEST_ARGS:-}"

bash scripts/setup.sh
bash scripts/apt-install.sh clang-14 libclang-rt-14-dev

# BOTBUS_WERROR off: -Werror is the GCC build's job (scripts/test.sh).
BOTBUS_CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++-14 -DBOTBUS_TSAN=ON -DBOTBUS_WERROR=OFF ${BOTBUS_CMAKE_ARGS:-}" \
  BUILD_TARGETS="e2e_test server_test store_test" bash scripts/build.sh

reports="$(cd "$BUILD_DIR" && pwd)/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
# halt_on_error=0: a report does not kill the daemon mid-test, so one run
# lists every race; the files decide. log_path applies to every process
# started with this environment, botbusd included.
export TSAN_OPTIONS="suppressions=$repo_root/scripts/tsan.supp log_path=$reports/report halt_on_error=0 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"

bash "$repo_root/scripts/promtool.sh" >/dev/null  # the metrics test lints its scrape with it
status=0
# *_NOT_BUILT: gtest_discover_tests' placeholder for bus_test; bench_smoke: bench/ is not built here.
# ReadOnlyDataDir preloads a shim that interposes open(2) and friends, which
# the ThreadSanitizer runtime intercepts itself: the daemon dies at start-up
# there. Those tests run in the normal and ASan suites.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 600 -E '_NOT_BUILT$|^bench_smoke$|^ReadOnlyDataDir\.|^PythonClient$|^GrafanaDashboard$' "${ctest_args[@]}" || status=$?

shopt -s nullglob
found=("$reports"/report*)
if ((${#found[@]} > 0)); then
  for file in "${found[@]}"; do
    echo "==== $file"
    cat "$file"
  done
  echo "tsan: ${#found[@]} process(es) reported data races or other thread errors (above)" >&2
  exit 1
fi
if ((status != 0)); then
  echo "tsan: tests failed under ThreadSanitizer" >&2
  exit "$status"
fi
echo "tsan: suite passed with no ThreadSanitizer reports"
