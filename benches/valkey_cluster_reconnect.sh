#!/usr/bin/env bash
# The main thread's latency while a Valkey cluster node reconnects to every peer over TLS
# (valkey #4648), side by side in one run: stock, conntls, and conntls with
# `tls-handshake-threads 2` (valkey-9.1-conntls.patch: the outgoing links' handshakes then
# run on conntls's pool). NODES nodes (tls-cluster yes, mutual TLS with the tree's test
# certificates) meet into one cluster; then, for SECONDS, node 0 drops its outgoing link to
# every peer every 200 ms (DEBUG CLUSTERLINK KILL to), so its cron reconnects to all of
# them, while one client sends PINGs to node 0's plain port one at a time
# (redis-benchmark -c 1): their latency is the main thread's. The same client runs first
# without the drops (the baseline). Then the drops alone, without the client: "main-thread
# CPU per reconnect" is node 0's main thread's user + system time over that phase
# (/proc/PID/task/PID/stat), less what it spends idle in as long (measured before), over
# the reconnects.
# usage: benches/valkey_cluster_reconnect.sh STOCK_TREE GLUE_TREE [NODES [SECONDS]]
#   (release trees: contrib/valkey/README.md; each tree's tests/tls comes from its
#   ./utils/gen-test-certs.sh). Prints one table row per build.
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$(cd "$1" && pwd) glue=$(cd "$2" && pwd) nodes=${3:-16} seconds=${4:-10} # absolute: each node runs in its own --dir
work=$(mktemp -d)
pids=()
stop_nodes() {
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
trap 'stop_nodes; rm -rf "$work"' EXIT
base=22000

# The PING latency summary of redis-benchmark's CSV line: "p50 p99 max" in ms, and req/s.
ping_latency() {
  redis-benchmark -p "$1" -c 1 -n "$2" -t ping_inline --csv 2>/dev/null |
    awk -F'","' 'NR == 2 { gsub(/"/, "", $8); print $2, $5, $7, $8 }'
}

# Node 0's main thread's CPU time so far, in ms.
main_thread_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000 / hz }' "/proc/$1/task/$1/stat"
}

# Node 0 drops its outgoing link to every peer every 200 ms for SECONDS; the drop rounds
# are counted in $work/rounds.
drop_links() {
  : >"$work/rounds"
  local end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    for id in $peers; do redis-cli -p $base DEBUG CLUSTERLINK KILL to "$id" >/dev/null; done
    echo round >>"$work/rounds"
    sleep 0.2
  done
}

echo "| build | PING/s | p50 ms | p99 ms | max ms | PING/s while reconnecting | p50 ms | p99 ms | max ms | reconnects | main-thread CPU per reconnect, ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
runs=("stock|$stock|" "conntls|$glue|" "conntls, tls-handshake-threads 2|$glue|--tls-handshake-threads 2")
for run in "${runs[@]}"; do
  IFS='|' read -r name tree options <<<"$run"
  server=$tree/src/valkey-server
  tls=$tree/tests/tls
  [ -f "$tls/ca.crt" ] || (cd "$tree" && ./utils/gen-test-certs.sh >/dev/null)
  base=$((base + 100))
  for n in $(seq 0 $((nodes - 1))); do
    dir=$work/$base-$n
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # options are words
    "$server" --port $((base + n)) --tls-port $((base + 50 + n)) --cluster-port $((base + 10000 + n)) \
      --bind 127.0.0.1 --cluster-enabled yes --tls-cluster yes --enable-debug-command yes \
      --dir "$dir" --cluster-config-file "$dir/nodes.conf" --save "" --appendonly no --logfile "$dir/log" \
      --tls-cert-file "$tls/valkey.crt" --tls-key-file "$tls/valkey.key" --tls-ca-cert-file "$tls/ca.crt" $options &
    pids+=($!)
  done
  for n in $(seq 0 $((nodes - 1))); do
    for _ in $(seq 100); do redis-cli -p $((base + n)) PING >/dev/null 2>&1 && break; sleep 0.1; done
    [ "$n" -eq 0 ] || redis-cli -p $base CLUSTER MEET 127.0.0.1 $((base + n)) $((base + 10000 + n)) >/dev/null
  done
  # Every node knows every other, and node 0 has a link to each.
  for _ in $(seq 300); do
    known=$(for n in $(seq 0 $((nodes - 1))); do redis-cli -p $((base + n)) CLUSTER INFO | tr -d '\r' | sed -n 's/^cluster_known_nodes://p'; done | sort -u)
    links=$(redis-cli -p $base CLUSTER LINKS | grep -cx to || true)
    [ "$known" = "$nodes" ] && [ "$links" = $((nodes - 1)) ] && break
    sleep 0.2
  done
  [ "$known" = "$nodes" ] && [ "$links" = $((nodes - 1)) ] || { echo "$name: the cluster did not form ($known known, $links links)" >&2; exit 1; }
  peers=$(redis-cli -p $base CLUSTER NODES | awk '$3 !~ /myself/ { print $1 }')
  requests=$((seconds * 4000))
  read -r rps0 p500 p990 max0 < <(ping_latency $base $requests)
  drop_links &
  killer=$!
  read -r rps p50 p99 max < <(ping_latency $base $requests)
  wait $killer
  # Idle, then the drops alone: the main thread's CPU time of each.
  cpu0=$(main_thread_ms "${pids[0]}")
  sleep "$seconds"
  cpu1=$(main_thread_ms "${pids[0]}")
  drop_links
  cpu2=$(main_thread_ms "${pids[0]}")
  reconnects=$(($(wc -l <"$work/rounds") * (nodes - 1)))
  per=$(echo "(($cpu2 - $cpu1) - ($cpu1 - $cpu0)) / $reconnects" | bc -l)
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.2f |\n' "$name" "$rps0" "$p500" "$p990" "$max0" \
    "$rps" "$p50" "$p99" "$max" "$reconnects" "$per"
  stop_nodes
done
