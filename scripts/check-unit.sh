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
