#!/usr/bin/env bash
# Checks the systemd unit as `cmake --install` installs it: `systemd-analyze
# verify` must pass without a word, and `systemd-analyze security` must
# score it at most 2.0 (the hardening botbus promises; README "Deploying").
#   BUILD_DIR   the configured build directory (default: build)
# Installs the systemd package (which holds systemd-analyze) when missing;
# skips, saying so, only when it cannot be had. Needs no running systemd.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
BUILD_DIR="${BUILD_DIR:-build}"
max_exposure_tenths=20  # 2.0 on systemd-analyze's scale of 0.0 to 10.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
  bash "$repo_root/scripts/apt-install.sh" systemd ||
    echo "check-unit: could not install the systemd package" >&2
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-unit: SKIPPED: systemd-analyze is not available here, the unit was not checked" >&2
  exit 0
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" cmake --install "$BUILD_DIR" >/dev/null
unit="$(find "$stage" -name botbusd.service -path '*/systemd/system/*' | head -n 1)"
if [[ -z "$unit" ]]; then
  echo "check-unit: cmake --install installed no botbusd.service" >&2
  exit 1
fi

echo "check-unit: systemd-analyze security --offline=yes ${unit#"$stage"}"
if ! systemd-analyze security --offline=yes --threshold="$max_exposure_tenths" "$unit" >"$stage/security.txt" 2>&1; then
  cat "$stage/security.txt" >&2
  echo "check-unit: FAILED: the unit's exposure is above 2.0 (the lines marked ✗ above say why)" >&2
  exit 1
fi
grep 'Overall exposure level' "$stage/security.txt"

# verify checks that ExecStart's program exists: that is the installed one,
# which lives under the staging root here, so a copy of the unit points there.
binary="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")"
mkdir -p "$stage/verify"
sed "s#^ExecStart=$binary#ExecStart=$stage$binary#" "$unit" >"$stage/verify/botbusd.service"
echo "check-unit: systemd-analyze verify ${unit#"$stage"}"
if ! systemd-analyze verify --man=no "$stage/verify/botbusd.service" >"$stage/verify.txt" 2>&1 ||
  [[ -s "$stage/verify.txt" ]]; then
  cat "$stage/verify.txt" >&2
  echo "check-unit: FAILED: systemd-analyze verify found problems in the unit" >&2
  exit 1
fi
echo "check-unit: the unit verifies cleanly"

# The system-call filter, as far as a machine without systemd as PID 1 can
# check it: botbusd runs under strace, which fails every call the unit's
# SystemCallFilter= lines do not allow with EPERM (SystemCallErrorNumber=),
# and must start, serve a few requests and stop cleanly. (The unit's other
# settings need systemd to apply them.)
if ! command -v strace >/dev/null 2>&1; then
  bash "$repo_root/scripts/apt-install.sh" strace || echo "check-unit: could not install strace" >&2
fi
if ! command -v strace >/dev/null 2>&1; then
  echo "check-unit: SKIPPED the system-call filter run: strace is not available here" >&2
  exit 0
fi
expand_calls() {  # the system calls a filter entry names, groups expanded
  local entry
  for entry in "$@"; do
    if [[ "$entry" == @* ]]; then
      # shellcheck disable=SC2046  # one name per word
      expand_calls $(systemd-analyze syscall-filter "$entry" | grep -vE '^\s*(#|$)' | tail -n +2)
    else
      echo "$entry"
    fi
  done
}
declare -A allowed=()
while IFS= read -r value; do
  if [[ "$value" == "~"* ]]; then
    # shellcheck disable=SC2086  # a list of entries
    for call in $(expand_calls ${value#"~"}); do unset "allowed[$call]"; done
  else
    # shellcheck disable=SC2086
    for call in $(expand_calls $value); do allowed[$call]=1; done
  fi
done < <(sed -n 's/^SystemCallFilter=//p' "$unit")
# strace's set syntax: everything but these ('?': a name strace lacks is no error).
refused="!$(printf '?%s\n' "${!allowed[@]}" | paste -sd,)"
cli="$stage$(dirname "$binary")/botbus"
# LeakSanitizer cannot run under ptrace: a sanitizer build checks leaks in
# the suite, not here.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -qq -o "$stage/filter.trace" -e trace="$refused" -e inject="$refused":error=EPERM \
  "$stage$binary" --data-dir "$stage/data" --command-endpoint 'tcp://127.0.0.1:*' --feed-endpoint 'tcp://127.0.0.1:*' \
  >"$stage/daemon.out" 2>"$stage/daemon.err" &
daemon=$!
for _ in $(seq 200); do
  grep -q '^botbusd ready' "$stage/daemon.out" 2>/dev/null && break
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
ready="$(grep '^botbusd ready' "$stage/daemon.out" || true)"
if [[ -z "$ready" ]]; then
  pkill -TERM -P "$daemon" || true
  cat "$stage/daemon.err" "$stage/filter.trace" >&2
  echo "check-unit: FAILED: botbusd did not start under the unit's system-call filter" >&2
  exit 1
fi
command_endpoint="$(sed -n 's/.*command=\([^ ]*\).*/\1/p' <<<"$ready")"
feed_endpoint="$(sed -n 's/.*feed=\([^ ]*\).*/\1/p' <<<"$ready")"
served=yes
for request in "ping" "publish lobby hello" "subscribe lobby" "history lobby" "stats"; do
  # shellcheck disable=SC2086  # the request's words
  "$cli" --command-endpoint "$command_endpoint" --feed-endpoint "$feed_endpoint" $request >/dev/null || served=no
done
# SIGTERM to botbusd itself, which strace runs as its child.
pkill -TERM -P "$daemon" || true
wait "$daemon" && stopped=yes || stopped=no
if [[ "$served" != yes || "$stopped" != yes ]]; then
  cat "$stage/daemon.err" "$stage/filter.trace" >&2
  echo "check-unit: FAILED: under the unit's system-call filter botbusd served=$served stopped cleanly=$stopped" >&2
  exit 1
fi
echo "check-unit: botbusd starts, serves and stops under the unit's system-call filter" \
  "($(grep -c INJECTED "$stage/filter.trace" || true) calls refused, none needed)"
