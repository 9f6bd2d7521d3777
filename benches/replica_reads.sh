#!/usr/bin/env bash
# A replica's reads while its primary takes 32 KiB SETs, stock against conntls, in one run:
# for each tree a primary and a replica (TLS replication, mutual TLS with the test
# certificates), the stock tree's benchmark loading the primary (SET, 32 KiB values, 50
# clients) while one client GETs from the replica; then the same without the load. Prints
# per build: the replica's GETs a second, the primary's SETs a second meanwhile, and the
# replica's CPU time (ticks) over the run.
# usage: benches/replica_reads.sh STOCK_TREE CONNTLS_TREE [ROUNDS]   (release trees)
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 conntls=$2 rounds=${3:-2}
certs=$PWD/target/tmp/certs
[ -f "$certs/ca.crt" ] || scripts/make-certs.sh "$certs" >/dev/null
work=$(mktemp -d)
pids=()
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
tls=(--tls-cert-file "$certs/server.crt" --tls-key-file "$certs/server.key" --tls-ca-cert-file "$certs/ca.crt" --tls-replication yes)
client=(--tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
bench=$stock/src/valkey-benchmark

echo "| build | load | replica GET/s (1 client) | primary SET/s meanwhile | replica CPU ticks |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for name in stock conntls; do
    tree=$stock; [ "$name" = conntls ] && tree=$conntls
    for load in "32 KiB SETs" none; do
      dir=$work/$round-$name-${load// /}; mkdir -p "$dir/p" "$dir/r"
      "$tree/src/valkey-server" --port 0 --tls-port 24001 "${tls[@]}" --save "" --appendonly no --dir "$dir/p" --logfile "$dir/p/log" &
      primary=$!
      "$tree/src/valkey-server" --port 0 --tls-port 24002 "${tls[@]}" --save "" --appendonly no --dir "$dir/r" --logfile "$dir/r/log" --replicaof 127.0.0.1 24001 &
      replica=$!
      pids=("$primary" "$replica")
      for _ in $(seq 100); do
        "$stock/src/valkey-cli" -p 24002 "${client[@]}" info replication 2>/dev/null | grep -q master_link_status:up && break
        sleep 0.1
      done
      loader=
      if [ "$load" != none ]; then
        "$bench" -p 24001 "${client[@]}" -t set -d 32768 -c 50 -n 1000000 -r 10000 --csv >/dev/null 2>&1 &
        loader=$!
        sleep 1
      fi
      before=$("$stock/src/valkey-cli" -p 24001 "${client[@]}" info stats | tr -d '\r' | sed -n 's/^total_commands_processed://p')
      start=$(date +%s.%N)
      gets=$("$bench" -p 24002 "${client[@]}" -t get -c 1 -n 20000 -r 10000 --csv 2>/dev/null | awk -F'","' 'NR == 2 { print $2 }')
      took=$(echo "$(date +%s.%N) - $start" | bc)
      after=$("$stock/src/valkey-cli" -p 24001 "${client[@]}" info stats | tr -d '\r' | sed -n 's/^total_commands_processed://p')
      [ -z "$loader" ] || { kill "$loader" 2>/dev/null; wait "$loader" 2>/dev/null || true; }
      ticks=$(awk '{ print $14 + $15 }' "/proc/$replica/stat")
      echo "| $name | $load | $gets | $(echo "($after - $before) / $took" | bc) | $ticks |"
      kill "$primary" "$replica"; wait "$primary" "$replica" 2>/dev/null || true
      pids=()
    done
  done
done
