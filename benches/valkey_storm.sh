#!/usr/bin/env bash
# A TLS connection storm (valkey #4308) against two builds of the same Valkey tree, side by
# side in one run: stock and with contrib/valkey/tls.c, each without and with IO threads.
# The trees are make servers's (contrib/valkey/README.md); this only runs their servers.
# usage: benches/valkey_storm.sh STOCK_TREE GLUE_TREE [STORM [GIVE_UP_MS [PATIENT [SECONDS]]]]
#   (from the repository; each tree has src/valkey-server and tests/tls/ from its
#   ./utils/gen-test-certs.sh)
#   PERF=dir also records each server with `perf record -g` for the storm's duration, into
#   dir/<n>.data (n: the run's number), and prints its samples by thread and library.
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 glue=$2 storm=${3:-2000} give_up=${4:-1000} patient=${5:-20} seconds=${6:-20}
bin=target/bench-system
mkdir -p "$bin"
cc -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude benches/tls_storm.c -o "$bin/tls_storm" \
   -Ltarget/release -Wl,-rpath,"$PWD/target/release" -lconntls -lssl -lcrypto -lpthread -ldl
cc -shared -fPIC -O2 benches/storm_counter.c -o "$bin/storm_counter.so" -ldl
counters=$(mktemp)
trap 'rm -f "$counters"' EXIT
ulimit -n $((storm + patient + 1024))
port=21500
# name, tree, server options
# max-new-tls-connections-per-cycle (default 1) is stock's own answer to storms: an
# operator raises it so that a backlog of new clients is accepted sooner.
runs=("stock|$stock|--io-threads 1" "glue|$glue|--io-threads 1" "glue, tls-handshake-threads 1|$glue|--io-threads 1 --tls-handshake-threads 1"
      "stock|$stock|--io-threads 1 --max-new-tls-connections-per-cycle 10"
      "stock|$stock|--io-threads 1 --max-new-tls-connections-per-cycle 100"
      "glue, tls-handshake-threads 1|$glue|--io-threads 1 --tls-handshake-threads 1 --max-new-tls-connections-per-cycle 100"
      "stock|$stock|--io-threads 2" "glue|$glue|--io-threads 2")
for run in "${runs[@]}"; do
  IFS='|' read -r name tree options <<<"$run"
  server=$tree/src/valkey-server
  # tls-handshake-threads is valkey-9.1-conntls.patch's; an unpatched 8.1 tree has none.
  if [[ $options == *handshake* ]] && ! grep -q tls-handshake-threads "$server"; then continue; fi
  tls=$tree/tests/tls
  [ -f "$tls/ca.crt" ] || (cd "$tree" && ./utils/gen-test-certs.sh >/dev/null)
  cert=$tls/valkey.crt
  port=$((port + 2))
  : >"$counters"
  # shellcheck disable=SC2086 # options are words
  STORM_COUNTERS=$counters LD_PRELOAD=$PWD/$bin/storm_counter.so "$server" --port $port --tls-port $((port + 1)) \
    --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null --maxclients $((storm + patient + 100)) \
    --tls-cert-file "$cert" --tls-key-file "${cert%.crt}.key" --tls-ca-cert-file "$tls/ca.crt" $options &
  pid=$!
  for _ in $(seq 50); do
    redis-cli -p $port PING >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p $port SET key value >/dev/null
  run_number=$((${run_number:-0} + 1))
  if [ -n "${PERF:-}" ]; then
    mkdir -p "$PERF"
    perf record -q -g -p $pid -o "$PERF/$run_number.data" -- sleep "$seconds" 2>/dev/null &
    perf_pid=$!
  fi
  printf '%s, %s: ' "$name" "$options"
  "$bin/tls_storm" --port $((port + 1)) --ca "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key" \
    --storm "$storm" --give-up-ms "$give_up" --patient "$patient" --seconds "$seconds" \
    --server-pid $pid --counters "$counters"
  if [ -n "${PERF:-}" ]; then
    wait $perf_pid || true
    perf report -i "$PERF/$run_number.data" --no-children --sort comm,dso --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 12
  fi
  kill $pid
  wait $pid || true
done
