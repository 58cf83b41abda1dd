#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks: a fresh cluster
# (initdb) in a temporary directory, listening on a Unix socket in that
# directory only (no TCP), run as an unprivileged user (postgres, when this
# runs as root; PostgreSQL refuses to run as root).
#
#   eval "$(bash scripts/postgres.sh start)"   # sets BOTBUS_TEST_POSTGRES, BOTBUS_TEST_POSTGRES_DIR
#   bash scripts/postgres.sh stop "$BOTBUS_TEST_POSTGRES_DIR"
#
# start prints the shell assignments; BOTBUS_TEST_POSTGRES is a postgresql://
# URI naming the socket directory, the user and the database `botbus`. Needs Debian's postgresql
# package (scripts/setup.sh installs it).
set -euo pipefail

bin_dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [[ -z "$bin_dir" || ! -x "$bin_dir/initdb" ]]; then
  echo "postgres.sh: no PostgreSQL server binaries under /usr/lib/postgresql (install the postgresql package)" >&2
  exit 1
fi

as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
start)
  dir="$(mktemp -d /tmp/botbus-pg.XXXXXX)"
  chmod 755 "$dir"
  user="$(id -un)"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres: "$dir"
    user=postgres
  fi
  as_owner "$bin_dir/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  # Durable as in production (fsync, synchronous_commit on); sized for a
  # 2-core test machine: the suite runs two test processes at a time, each
  # starting daemons that connect.
  as_owner "$bin_dir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=300 -c shared_buffers=128MB" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bin_dir/createdb" -h "$dir" -U "$user" botbus
  echo "export BOTBUS_TEST_POSTGRES='postgresql:///botbus?host=$dir&user=$user'"
  echo "export BOTBUS_TEST_POSTGRES_DIR='$dir'"
  ;;
stop)
  dir="${2:?usage: postgres.sh stop DIR}"
  if [[ -d "$dir/data" ]]; then
    as_owner "$bin_dir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: postgres.sh start | stop DIR" >&2
  exit 2
  ;;
esac
