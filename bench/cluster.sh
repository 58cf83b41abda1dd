#!/usr/bin/env bash
# botbusd beyond one machine, measured: publish throughput and the server CPU
# per message of one node on SQLite, and of 1, 2 and 3 nodes on one
# PostgreSQL log (botbus-bench --only cluster), on a throwaway PostgreSQL
# server started and stopped here (scripts/postgres.sh: a Unix socket,
# fsync and synchronous_commit on). Not part of the test suite.
#
#   bash bench/cluster.sh                 # build, then REPS=3 of each
#   REPS=1 SECS=1 NODES=1,3 bash bench/cluster.sh
#
# Environment: REPS (default 3), SECS (default 2), NODES (default 1,2,3),
# BUILD_DIR (default build). RESULT lines and the table go to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=$BUILD_DIR bash "$ROOT/scripts/build.sh" >/dev/null
eval "$(bash "$ROOT/scripts/postgres.sh" start)"
trap 'bash "$ROOT/scripts/postgres.sh" stop "$BOTBUS_TEST_POSTGRES_DIR"' EXIT
postmaster=$(head -1 "$BOTBUS_TEST_POSTGRES_DIR/data/postmaster.pid")
# psql makes each measurement's schema, as the server's own user.
"$ROOT/$BUILD_DIR/bench/botbus-bench" --only cluster --postgres "$BOTBUS_TEST_POSTGRES" \
  --postgres-pid "$postmaster" --nodes "${NODES:-1,2,3}" --reps "${REPS:-3}" --secs "${SECS:-2}"
