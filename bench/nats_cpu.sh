#!/usr/bin/env bash
# nats-server's CPU per acknowledged JetStream publish, the figure
# ../shared/bench/peers/redis_bench.sh reports for redis-server ("server CPU
# per XADD") and botbus-bench for botbusd: user+sys of the server process
# from /proc/PID/stat over one measured run, divided by the messages stored.
# Uses the raw-protocol client of the peers' nats_bench.cjs (one run per rep,
# so the counters bracket exactly one measurement). Prints RESULT lines.
# Server: own config under $PERF/nats-cpu, 127.0.0.1 only, started and
# stopped by PID here. Needs nats-server, node and the nats npm package that
# nats_bench.sh installs under $PERF/node.
set -euo pipefail
PERF=${PERF:-/tmp/perf}
REPS=${REPS:-3}
SECS=${SECS:-1.5}
PORT=${NATS_CPU_PORT:-4291}
PEERS=${PEERS:?set PEERS to ../shared/bench/peers}
NDIR=$PERF/nats-cpu
rm -rf "$NDIR"
mkdir -p "$NDIR"
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
  echo "port $PORT already in use; set NATS_CPU_PORT" >&2; exit 1
fi
cat > "$NDIR/nats.conf" <<EOC
listen: 127.0.0.1:$PORT
max_pending: 1GB
write_deadline: "30s"
jetstream {
  store_dir: "$NDIR/js"
  max_file_store: 8GB
  max_memory_store: 1GB
}
EOC
nats-server -c "$NDIR/nats.conf" -l "$NDIR/nats.log" &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.05
done
kill -0 $SERVER_PID || { echo "nats-server died, see $NDIR/nats.log" >&2; exit 1; }
[[ -d $PERF/node/node_modules/nats ]] || { echo "no nats npm package under $PERF/node (run nats_bench.sh first)" >&2; exit 1; }
export NATS_URL=127.0.0.1:$PORT NATS_NODE_DIR=$PERF/node

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

for window in 1000 1; do
  cpus=()
  for ((i = 0; i < REPS; i++)); do
    t0=$(ticks "$SERVER_PID")
    line=$(timeout 120 node "$PEERS/nats_bench.cjs" js-raw "$window" 1 "$SECS" 2>&1 >/dev/null | grep -o 'stored [0-9]*' | tail -1)
    t1=$(ticks "$SERVER_PID")
    stored=${line#stored }
    [[ -n $stored && $stored -gt 0 ]] || { echo "nats js-raw window=$window: no stored count" >&2; continue; }
    cpu=$(awk -v d=$((t1 - t0)) -v n="$stored" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f", d * 1e6 / hz / n}')
    echo "  nats server CPU per JetStream publish, window=$window rep=$i: $cpu us ($stored stored)" >&2
    cpus+=("$cpu")
  done
  ((${#cpus[@]})) || continue
  sorted=$(printf '%s\n' "${cpus[@]}" | sort -g)
  n=${#cpus[@]}
  median=$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted")
  echo "RESULT|nats|server CPU per JetStream publish raw-protocol (window=$window)|us|$median|$(head -1 <<<"$sorted")|$(tail -1 <<<"$sorted")|$n|$(nats-server --version), file stream R1, 200 B, raw-protocol client, <=$window PubAcks outstanding, ~${SECS}s per rep (nats-server user+sys from /proc/PID/stat over the run, divided by messages stored; the run includes the stream's creation)"
done
