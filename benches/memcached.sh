#!/usr/bin/env bash
# memcached stock against memcached on conntls, side by side in one run, over TLS from the
# same client (benches/mc_load.c, benches/tls_storm.c: conntls's client transport):
#   - get and set of 32 B to 64 KiB values and ten-key multigets: requests/s, p99 and the
#     server's CPU per request;
#   - idle memory per TLS connection (2,000 connections);
#   - a handshake storm on an RSA-4096 certificate: the accept rate (handshakes finished
#     per second) and four established clients' GETs, without and with the storm.
# The trees are make servers's release builds (contrib/memcached/README.md):
#   make servers SERVERS_SANITIZER= SERVERS_ROOT=$PWD/target/servers-release
# usage: benches/memcached.sh STOCK_TREE CONNTLS_TREE [SECONDS [STORM]]
#   (from the repository; each tree has its built ./memcached)
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 conntls=$2 seconds=${3:-10} storm=${4:-200}
bin=target/bench-system
mkdir -p "$bin"
for tool in mc_load tls_storm; do
  cc -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude "benches/$tool.c" -o "$bin/$tool" \
     -Ltarget/release -Wl,-rpath,"$PWD/target/release" -lconntls -lssl -lcrypto -lpthread -ldl
done
certs=target/bench-certs
[ -f "$certs/server-rsa4096.crt" ] || scripts/make-certs.sh "$certs" >/dev/null
ulimit -n 8192
port=26500
pid=

# start TREE CERT: memcached (four worker threads, its default) on a fresh port; its
# stderr goes to target/bench-system/memcached.log.
start() {
  port=$((port + 1))
  "$1/memcached" -u root -U 0 -l 127.0.0.1 -p "$port" -c 8192 -m 256 -Z \
    -o "ssl_chain_cert=$certs/$2.crt,ssl_key=$certs/$2.key" 2>>"$bin/memcached.log" &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  echo "memcached did not listen on $port" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

echo "== requests: 20 connections, one request in flight each, $seconds s per line"
for run in "get 32" "get 1024" "get 16384" "get 65536" "set 32" "set 1024" "set 16384" "set 65536" "mget 1024" "mget 16384"; do
  read -r op size <<<"$run"
  for side in stock conntls; do
    tree=$stock; [ "$side" = conntls ] && tree=$conntls
    start "$tree" server
    printf '%-8s ' "$side"
    "$bin/mc_load" --port "$port" --ca "$certs/ca.crt" --op "$op" --size "$size" --conns 20 --seconds "$seconds" --server-pid "$pid"
    stop
  done
done

echo "== idle memory"
for side in stock conntls; do
  tree=$stock; [ "$side" = conntls ] && tree=$conntls
  start "$tree" server
  printf '%-8s ' "$side"
  "$bin/mc_load" --port "$port" --ca "$certs/ca.crt" --idle 2000 --server-pid "$pid"
  stop
done

echo "== handshake storm (RSA-4096): $storm clients giving up after 1 s, 4 established clients"
for n in 0 "$storm"; do
  for side in stock conntls; do
    tree=$stock; [ "$side" = conntls ] && tree=$conntls
    start "$tree" server-rsa4096
    printf '%-8s ' "$side"
    "$bin/tls_storm" --protocol memcached --port "$port" --ca "$certs/ca.crt" --storm "$n" --give-up-ms 1000 \
      --patient 4 --seconds "$seconds" --server-pid "$pid"
    stop
  done
done
