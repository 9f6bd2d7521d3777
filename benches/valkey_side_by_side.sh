#!/usr/bin/env bash
# Stock Valkey and the glue (contrib/valkey/tls.c) under the same client, stock's own
# kv-benchmark over TLS, in interleaved rounds: SET and GET of 32 KiB values.
# usage: benches/valkey_side_by_side.sh STOCK_TREE GLUE_TREE [ROUNDS [REQUESTS]]
set -euo pipefail
stock=$1 glue=$2 rounds=${3:-3} requests=${4:-20000}
bench=$stock/src/kv-benchmark; [ -x "$bench" ] || bench=$stock/src/valkey-benchmark
tls=$stock/tests/tls
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
port=21800 # stock: 21802 plain, 21803 TLS; glue: 21804, 21805
for tree in "$stock" "$glue"; do
  server=$tree/src/kv-server; [ -x "$server" ] || server=$tree/src/valkey-server
  port=$((port + 2))
  "$server" --port $port --tls-port $((port + 1)) --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null \
    --tls-cert-file "$tls/kv.crt" --tls-key-file "$tls/kv.key" --tls-ca-cert-file "$tls/ca.crt" &
  pids+=($!)
done
sleep 1
rps() { # port test
  "$bench" -p "$1" --tls --cacert "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key" \
    -d 32768 -t "$2" -c 50 -n "$requests" -q 2>&1 | tr '\r' '\n' | sed -n 's/^[A-Z]*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}
echo "| round | glue SET/s | stock SET/s | glue GET/s | stock GET/s |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  echo "| $round | $(rps 21805 set) | $(rps 21803 set) | $(rps 21805 get) | $(rps 21803 get) |"
done
