#!/usr/bin/env bash
# The client transports against the libraries' own TLS, side by side in one run: hiredis
# 1.2.0 (conntls transport / hiredis_ssl) and libvalkey 0.5.0 (conntls transport / its
# TLS), built by scripts/clients.sh, each a blocking client pipelining SETs then GETs of
# 32 B and 32 KiB values to the same Debian redis-server --tls (mutual TLS, the test
# certificates of scripts/make-certs.sh). Interleaved rounds; medians of requests/s and of
# the client's CPU per request (getrusage: what the transport costs the client).
# usage: benches/clients_side_by_side.sh [ROUNDS [COUNT [PIPELINE]]]
#
# With CALLGRIND=1, instead of timing: the client's instructions per request, counted by
# callgrind (exact, whatever the machine's speed): each client runs COUNT and then 2*COUNT
# SETs and GETs, and the difference of the two totals over 2*COUNT requests is what one
# request costs the client, its connection and handshake left out. ROUNDS is then unused.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} count=${2:-20000} pipeline=${3:-16}
scripts/clients.sh >/dev/null
bin=target/bench-system
certs=$bin/certs
mkdir -p "$bin"
[ -f "$certs/ca.crt" ] || scripts/make-certs.sh "$certs" >/dev/null
declare -A define=([hiredis]=CLIENT_HIREDIS [libvalkey]=CLIENT_VALKEY)
declare -A inc=([hiredis]=target/clients/hiredis-1.2.0 [libvalkey]=target/clients/libvalkey-0.5.0/include/valkey)
declare -A libs=([hiredis]="hiredis_conntls hiredis_ssl hiredis" [libvalkey]="valkey_conntls valkey_tls valkey")
for lib in hiredis libvalkey; do
  dir=target/clients/hiredis-1.2.0; [ $lib = libvalkey ] && dir=target/clients/libvalkey-0.5.0
  archives=(); for a in ${libs[$lib]}; do archives+=("$dir/lib$a.a"); done
  cc -std=c99 -D_GNU_SOURCE -O2 -D"${define[$lib]}" -I"${inc[$lib]}" -Iinclude benches/client_bench.c -o "$bin/client_bench_$lib" \
     "${archives[@]}" -Ltarget/release -Wl,-rpath,"$PWD/target/release" -lconntls -lssl -lcrypto
done
port=21900
redis-server --port 0 --tls-port $port --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null \
  --tls-cert-file "$certs/server.crt" --tls-key-file "$certs/server.key" --tls-ca-cert-file "$certs/ca.crt" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
sleep 1
if [ "${CALLGRIND:-}" = 1 ]; then
  instructions() { # LIB TRANSPORT SIZE COUNT: the client's instructions in total
    local out=$bin/callgrind.out
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/client_bench_$1" $port "$certs/ca.crt" "$certs/client.crt" \
      "$certs/client.key" "$2" "$3" "$4" "$pipeline" >/dev/null 2>"$bin/callgrind.log" || { cat "$bin/callgrind.log" >&2; exit 1; }
    sed -n 's/^summary: //p' "$out"
  }
  echo "| library, value size ($pipeline in flight) | instructions per request, conntls transport | own TLS | conntls / own |"
  echo "|---|---|---|---|"
  for lib in hiredis libvalkey; do
    for size in 32 32768; do
      declare -A per
      for transport in conntls openssl; do
        one=$(instructions $lib $transport $size "$count") two=$(instructions $lib $transport $size $((2 * count)))
        per[$transport]=$(( (two - one) / (2 * count) ))
      done
      printf '| %s, %s B | %s | %s | %.3f |\n' $lib $size "${per[conntls]}" "${per[openssl]}" "$(echo "${per[conntls]} / ${per[openssl]}" | bc -l)"
    done
  done
  exit 0
fi
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A set get cpu
for round in $(seq "$rounds"); do
  for lib in hiredis libvalkey; do
    for size in 32 32768; do
      for transport in conntls openssl; do
        read -r s g c < <("$bin/client_bench_$lib" $port "$certs/ca.crt" "$certs/client.crt" "$certs/client.key" \
                          $transport $size "$count" "$pipeline")
        k="$lib $size $transport"
        set[$k]+="$s " get[$k]+="$g " cpu[$k]+="$c "
      done
    done
  done
done
echo "| library, value size ($count SETs then GETs, $pipeline in flight, median of $rounds) | SET rps conntls / own TLS | GET rps conntls / own TLS | client CPU per request, conntls / own TLS |"
echo "|---|---|---|---|"
for lib in hiredis libvalkey; do
  for size in 32 32768; do
    a="$lib $size conntls" b="$lib $size openssl"
    printf '| %s, %s B | %s / %s (%.2f) | %s / %s (%.2f) | %s / %s us (%.2f) |\n' "$lib" "$size" \
      "$(median <<<"${set[$a]}")" "$(median <<<"${set[$b]}")" "$(echo "$(median <<<"${set[$a]}") / $(median <<<"${set[$b]}")" | bc -l)" \
      "$(median <<<"${get[$a]}")" "$(median <<<"${get[$b]}")" "$(echo "$(median <<<"${get[$a]}") / $(median <<<"${get[$b]}")" | bc -l)" \
      "$(median <<<"${cpu[$a]}")" "$(median <<<"${cpu[$b]}")" "$(echo "$(median <<<"${cpu[$a]}") / $(median <<<"${cpu[$b]}")" | bc -l)"
  done
done
