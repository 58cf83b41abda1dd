#!/usr/bin/env bash
# Runs the whole suite several times while busy loops hold every core, the
# way a shared CI machine or a laptop compiling something else would. A test
# that passes only on an idle machine fails here.
#   RUNS        how many times to run the suite (default: 20)
#   BUSY        how many busy loops beside it (default: the number of cores)
#   BUILD_DIR   build directory (default: build)
#   CTEST_ARGS  extra ctest arguments (e.g. "-R Subscriptions")
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export BUILD_DIR="${BUILD_DIR:-build}"
runs="${RUNS:-20}"
busy="${BUSY:-$(nproc)}"
read -r -a ctest_args <<<"${CTEST_ARGS:-}"

bash "$repo_root/scripts/build.sh"

# Each loop ends by itself after two hours, and with this script.
loops=()
cleanup() { ((${#loops[@]})) && kill "${loops[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for ((i = 0; i < busy; i++)); do
  timeout 7200 bash -c 'while :; do :; done' &
  loops+=("$!")
done

log_dir="$(mktemp -d)"
passed=0
failed=0
for ((run = 1; run <= runs; run++)); do
  if ctest --test-dir "$BUILD_DIR" -j2 --timeout 300 --output-on-failure "${ctest_args[@]}" >"$log_dir/run-$run.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $run/$runs: passed"
  else
    failed=$((failed + 1))
    echo "run $run/$runs: FAILED ($log_dir/run-$run.log)"
    grep -E '^[[:space:]]*[0-9]+ - |\(Failed\)|\(Timeout\)' "$log_dir/run-$run.log" | sed 's/^/    /' || true
  fi
done
echo "under load ($busy busy loops): $passed of $runs suite runs passed, $failed failed"
((failed == 0))
