#!/usr/bin/env bash
# Runs the botbus benchmark beside its peers in one run and prints botbus/peer
# ratios at matched concurrency. Not part of the test suite.
#
#   bash bench/run.sh                    # build, botbus-bench, Redis, NATS, ratios (~5-8 min on 2 cores)
#   REPS=1 CATCHUP_N=200000 bash bench/run.sh
#   SKIP="redis nats" bash bench/run.sh  # words: build botbus floors redis nats
#
# Environment: REPS (default 3), SECS (peer measurement length, default 1.5),
# CATCHUP_N (default 1000000), BENCH_ARGS (extra botbus-bench options),
# BUILD_DIR (default build), PEERS (default ../shared/bench/peers next to the repo),
# PERF (work dir, default /tmp/perf). Outputs in $PERF/botbus-run/: results.txt
# (RESULT lines of every system), run.log, summary.md, ratios.txt.
# All traffic stays on 127.0.0.1; servers are started and stopped by PID.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEERS=${PEERS:-$(cd "$ROOT/.." && pwd)/shared/bench/peers}
export PERF=${PERF:-/tmp/perf}
export REPS=${REPS:-3}
export SECS=${SECS:-1.5}
CATCHUP_N=${CATCHUP_N:-1000000}
BUILD_DIR=${BUILD_DIR:-build}
SKIP=${SKIP:-}
OUT=$PERF/botbus-run
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
LOG=$OUT/run.log
: > "$RESULTS"
: > "$LOG"
T_START=$(date +%s)

say() { echo "== $*" | tee -a "$LOG" >&2; }
skip() { [[ " $SKIP " == *" $1 "* ]]; }
# run NAME TIMEOUT CMD...: RESULT lines -> results file, everything -> log
run() {
  local name=$1 to=$2; shift 2
  say "$name"
  local t0=$SECONDS rc=0
  timeout "$to" "$@" 2> >(tee -a "$LOG" >&2) | tee -a "$LOG" | grep '^RESULT|' >> "$RESULTS" || rc=$?
  [[ $rc -ne 0 ]] && say "$name: exit $rc (continuing)"
  echo "   ($((SECONDS - t0)) s)" >&2
  return 0
}

# 1000 connected clients need more than the default 1024 descriptors.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------------------ build
if ! skip build; then
  say "build ($BUILD_DIR)"
  BUILD_DIR=$BUILD_DIR bash "$ROOT/scripts/build.sh" >>"$LOG" 2>&1 || { say "build failed, see $LOG"; exit 1; }
fi
BENCH=$ROOT/$BUILD_DIR/bench/botbus-bench
[[ -x $BENCH ]] || { echo "no $BENCH; build first" >&2; exit 1; }

# ------------------------------------------------------------------ peer servers
need=()
if ! skip redis; then
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v redis-benchmark >/dev/null || need+=(redis-tools)
fi
if ! skip nats; then
  command -v nats-server >/dev/null || need+=(nats-server)
  command -v node >/dev/null || need+=(nodejs npm)
fi
if ((${#need[@]})); then
  say "install ${need[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } >>"$LOG" 2>&1 \
    || say "install failed (the peers that need it will report nothing)"
fi

# ------------------------------------------------------------------ machine
{
  echo "machine: nproc=$(nproc), CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
       "mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel=$(uname -r),"\
       "fs=$(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2" on "$1}'), date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "botbus $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty');"\
       "redis $(redis-server --version 2>/dev/null | grep -o 'v=[0-9.]*' | cut -d= -f2);"\
       "$(nats-server --version 2>/dev/null); node $(node --version 2>/dev/null)"
} | tee "$OUT/machine.txt" | tee -a "$LOG"

# ------------------------------------------------------------------ run
# shellcheck disable=SC2086  # BENCH_ARGS holds several words
# --curve: the publish figures again with CURVE on (--auth curve), beside them.
skip botbus || run "botbus-bench" 1200 "$BENCH" --reps "$REPS" --catchup-n "$CATCHUP_N" --curve ${BENCH_ARGS:-}
# The floors (bench/floor_server.cpp): what a server made of botbus's parts
# spends per publish with no logic of its own, measured in botbusd's place.
FLOOR=$ROOT/$BUILD_DIR/bench/botbus-floor
if ! skip floors && [[ -x $FLOOR ]]; then
  for floor in codec sqlite blocks; do
    BOTBUS_FLOOR=$floor run "floor: $floor" 300 "$BENCH" --botbusd "$FLOOR" --section "floor-$floor" \
      --only throughput --reps "$REPS" ${BENCH_ARGS:-}
  done
fi
skip redis || run "redis streams (XADD)" 300 bash "$PEERS/redis_bench.sh"
skip nats || NATS_FANOUT=${NATS_FANOUT:-0} run "nats / jetstream" 300 bash "$PEERS/nats_bench.sh"
skip nats || PEERS=$PEERS run "nats server CPU per publish" 300 bash "$HERE/nats_cpu.sh"

# ------------------------------------------------------------------ ratios
if [[ -f $PEERS/summarize.cjs ]] && command -v node >/dev/null; then
  node "$PEERS/summarize.cjs" "$RESULTS" > "$OUT/summary.md" || true
fi
awk -F'|' '
  /^RESULT\|/ { v[$2 "|" $3] = $5 }
  function ratio(label, b, p, target,    bv, pv) {
    bv = v["botbus|" b]; pv = v[p]
    if (bv == "" || pv == "" || pv + 0 == 0) {
      printf "%-58s %s\n", label, "n/a (" (bv == "" ? "botbus" : "peer") " figure missing)"
      return
    }
    printf "%-58s %10.0f / %10.0f = %5.2fx  (target >= %sx: %s)\n", label, bv, pv, bv / pv, target,
           (bv / pv >= target ? "met" : "MISSED")
  }
  function us(x) { return x == "" ? "n/a" : sprintf("%.2f", x) }
  function cpu(label, b, p,    bv, pv) {
    bv = v["botbus|" b]; pv = v[p]
    if (bv == "" || pv == "" || pv + 0 == 0) {
      printf "%-66s %s\n", label, "n/a (" (bv == "" ? "botbus" : "peer") " figure missing)"
      return
    }
    printf "%-66s %7.2f / %7.2f = %5.2fx  (target <= 1x: %s)\n", label, bv, pv, bv / pv, (bv <= pv ? "met" : "MISSED")
  }
  END {
    print "botbus / peer, same run, medians (msg/s):"
    ratio("16 clients x 64 vs Redis XADD -c16 -P64 always", "publish 16 clients x 64 in flight",
          "redis|XADD appendfsync=always -P 64 -c 16", 1.2)
    ratio("1 client x 1000 vs NATS JetStream raw, window 1000", "publish 1 client x 1000 in flight",
          "nats|JetStream publish raw-protocol (window=1000)", 2)
    ratio("1 client x 1000 vs NATS JetStream nats.js, window 1000", "publish 1 client x 1000 in flight",
          "nats|JetStream publish async (window=1000)", 2)
    ratio("one at a time vs Redis XADD -c1 -P1 always", "publish 1 client x 1 in flight",
          "redis|XADD appendfsync=always -P 1 -c 1", 1)
    print "(NATS 2.9 JetStream acknowledges before fsync; botbus and Redis always fsync before the ack.)"
    print ""
    print "server CPU per acknowledged message (user+sys of the server process over the run / messages), medians (us):"
    cpu("16 clients x 64: botbusd vs redis-server XADD -c16 -P64 always", "server CPU per publish 16 clients x 64 in flight",
        "redis|server CPU per XADD appendfsync=always -P 64 -c 16")
    cpu("1 client x 1000: botbusd vs nats-server JetStream, window 1000", "server CPU per publish 1 client x 1000 in flight",
        "nats|server CPU per JetStream publish raw-protocol (window=1000)")
    cpu("1 client x 1000: botbusd vs redis-server XADD -c1 -P64 always", "server CPU per publish 1 client x 1000 in flight",
        "redis|server CPU per XADD appendfsync=always -P 64 -c 1")
    cpu("one at a time: botbusd vs redis-server XADD -c1 -P1 always", "server CPU per publish 1 client x 1 in flight",
        "redis|server CPU per XADD appendfsync=always -P 1 -c 1")
    cpu("one at a time: botbusd vs nats-server JetStream, window 1", "server CPU per publish 1 client x 1 in flight",
        "nats|server CPU per JetStream publish raw-protocol (window=1)")
    print ""
    print "server CPU per acknowledged publish: botbusd beside the floors of bench/floor_server.cpp, medians (us):"
    printf "%-20s %10s %10s %10s %10s\n", "load", "botbusd", "codec", "sqlite", "blocks"
    n = split("16 clients x 64|1 client x 1000|1 client x 1", loads, "|")
    for (i = 1; i <= n; ++i) {
      f = "server CPU per publish " loads[i] " in flight"
      printf "%-20s %10s %10s %10s %10s\n", loads[i], us(v["botbus|" f]), us(v["floor-codec|" f]),
             us(v["floor-sqlite|" f]), us(v["floor-blocks|" f])
    }
    print "(codec: ZeroMQ ROUTER + botbus codec, nothing stored; sqlite: + one durable row per publish;"
    print " blocks: + one durable row per batch. Each answers hello and publish only.)"
    print ""
    print "botbus publish throughput, CURVE on (--auth curve) beside off, medians (msg/s):"
    n = split("1 client x 1|1 client x 1000|16 clients x 64", shapes, "|")
    for (i = 1; i <= n; ++i) {
      plain = v["botbus|publish " shapes[i] " in flight"]; curve = v["botbus|publish " shapes[i] " in flight (CURVE)"]
      if (plain == "" || curve == "") { printf "%-58s n/a\n", shapes[i] " in flight"; continue }
      printf "%-58s %10.0f off, %10.0f on = %5.2fx\n", shapes[i] " in flight", plain, curve, curve / plain
    }
  }' "$RESULTS" | tee "$OUT/ratios.txt"

echo
cat "$OUT/machine.txt"
echo
[[ -f $OUT/summary.md ]] && cat "$OUT/summary.md"
echo
cat "$OUT/ratios.txt"
echo
echo "total wall time: $(( $(date +%s) - T_START )) s; results: $RESULTS, log: $LOG"
