#!/usr/bin/env bash
# Server memory per idle client, a stock server against its conntls build (Valkey or Redis),
# in one run: N plain clients, then N mutual-TLS clients (the tree's test certificates,
# server.crt for the server as in benches/idle_memory.c --valkey), each kind on a fresh
# server, each client having sent one PING.
# usage: benches/server_idle.sh STOCK_TREE CONNTLS_TREE [N]
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 conntls=$2 count=${3:-3000}
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "none of $*" >&2; exit 1; }
bin=target/bench-system
mkdir -p "$bin"
cc -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude benches/idle_clients.c -o "$bin/idle_clients" \
   -Ltarget/release -Wl,-rpath,"$PWD/target/release" -lconntls -lssl -lcrypto -lpthread -ldl
ulimit -n $((count + 1024))
port=21600
for tree in "$stock" "$conntls"; do
  name=stock; [ "$tree" = "$conntls" ] && name=conntls
  server=$(first "$tree"/src/{valkey,redis}-server)
  tls=$tree/tests/tls
  [ -f "$tls/ca.crt" ] || (cd "$tree" && ./utils/gen-test-certs.sh >/dev/null)
  for kind in plain tls; do
    port=$((port + 2))
    "$server" --port $port --tls-port $((port + 1)) --bind 127.0.0.1 --save "" --appendonly no \
      --logfile /dev/null --maxclients $((count + 100)) \
      --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" --tls-ca-cert-file "$tls/ca.crt" &
    pid=$!
    for _ in $(seq 50); do
      redis-cli -p $port PING >/dev/null 2>&1 && break
      sleep 0.1
    done
    printf '%s %s: ' "$name" "$kind"
    if [ $kind = plain ]; then
      "$bin/idle_clients" --server-pid $pid --port $port --count "$count"
    else
      "$bin/idle_clients" --server-pid $pid --port $((port + 1)) --count "$count" \
        --ca "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key"
    fi
    kill $pid
    wait $pid || true
  done
done
