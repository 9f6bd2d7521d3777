#!/usr/bin/env bash
# A stock server and its conntls build (Valkey or Redis: the trees of `make servers` or
# contrib/valkey) under the same client, the stock tree's own benchmark over TLS, in
# interleaved rounds: each cell is measured on both servers back to back, round after
# round. Prints the median requests/s of each, conntls/stock, and each server's CPU time
# per request (user + system, from /proc: steadier than requests/s on a shared machine).
# usage: benches/server_side_by_side.sh STOCK_TREE CONNTLS_TREE [ROUNDS [REQUESTS]]
#   NODELAY=1 preloads benches/nodelay_shim.c into the benchmark client (redis-benchmark
#   does not set TCP_NODELAY: its requests above one TLS record then wait for delayed ACKs).
#   SERVER_OPTIONS="--io-threads 2" passes options to both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 conntls=$2 rounds=${3:-3} requests=${4:-20000}
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "none of $*" >&2; exit 1; }
bench=$(first "$stock"/src/{valkey,redis}-benchmark)
tls=$stock/tests/tls
[ -f "$tls/ca.crt" ] || (cd "$stock" && ./utils/gen-test-certs.sh >/dev/null)
cert=$(first "$tls"/{valkey,redis}.crt)
preload=
if [ "${NODELAY:-}" = 1 ]; then
  mkdir -p target/bench-system
  cc -shared -fPIC -O2 -o target/bench-system/nodelay_shim.so benches/nodelay_shim.c -ldl
  preload=$PWD/target/bench-system/nodelay_shim.so
fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
declare -A port=([stock]=21803 [conntls]=21805) pid
for name in stock conntls; do
  tree=$stock; [ $name = conntls ] && tree=$conntls
  server=$(first "$tree"/src/{valkey,redis}-server)
  "$server" --port 0 --tls-port "${port[$name]}" --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null \
    --tls-cert-file "$cert" --tls-key-file "${cert%.crt}.key" --tls-ca-cert-file "$tls/ca.crt" ${SERVER_OPTIONS:-} &
  pids+=($!)
  pid[$name]=$!
done
sleep 1
rps() { # port size test
  LD_PRELOAD=$preload "$bench" -p "$1" --tls --cacert "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key" \
    -d "$2" -t "$3" -c 50 -n "$requests" -q 2>&1 | tr '\r' '\n' |
    sed -n 's/^[A-Z_0-9 ()a-z]*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
cells=("32 set" "32 get" "32768 set" "32768 get" "32 lrange_100")
declare -A got ticks
for round in $(seq "$rounds"); do
  for cell in "${cells[@]}"; do
    for name in conntls stock; do
      before=$(cpu_ticks "${pid[$name]}")
      got[$name $cell]+="$(rps "${port[$name]}" $cell) "
      ticks[$name $cell]=$(( ${ticks[$name $cell]:-0} + $(cpu_ticks "${pid[$name]}") - before ))
    done
  done
done
hz=$(getconf CLK_TCK)
echo "| workload (50 clients, $requests requests, median of $rounds) | conntls rps | stock rps | conntls/stock | server CPU per request, conntls / stock |"
echo "|---|---|---|---|---|"
for cell in "${cells[@]}"; do
  c=$(median <<< "${got[conntls $cell]}") s=$(median <<< "${got[stock $cell]}")
  read -r size test <<< "$cell"
  awk -v t="${test^^}" -v z="$size" -v c="$c" -v s="$s" -v tc="${ticks[conntls $cell]}" -v ts="${ticks[stock $cell]}" \
      -v n=$((requests * rounds)) -v hz="$hz" \
    'BEGIN { printf "| %s %s B | %s | %s | %.2f | %.1f / %.1f us |\n", t, z, c, s, c / s, tc * 1e6 / hz / n, ts * 1e6 / hz / n }'
done
