#!/usr/bin/env bash
# examples/resp_server.c (conntls) next to Debian's redis-server (its own OpenSSL TLS), same
# redis-benchmark, same machine, one run; each server's TLS/plain ratio per workload.
# usage: benches/side_by_side.sh [requests-scale]   (needs redis-server and redis-benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
work=$(mktemp -d /tmp/conntls-sbs.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/lib"
ln -s "$PWD/target/release/libconntls.so" "$work/lib/libconntls.so.0"
ln -s "$PWD/target/release/libconntls.so" "$work/lib/libconntls.so"
cc -std=c11 -O2 -Iinclude examples/resp_server.c -o "$work/resp_server" -L"$work/lib" -Wl,-rpath,"$work/lib" -lconntls -lpthread
scripts/make-certs.sh "$work/certs" >/dev/null
c=$work/certs
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ct=$(free_port); cp=$(free_port); rt=$(free_port); rp=$(free_port)
"$work/resp_server" --tls-port "$ct" --port "$cp" --cert "$c/server.crt" --key "$c/server.key" --ca "$c/ca.crt" >/dev/null 2>&1 &
pids+=($!)
redis-server --bind 127.0.0.1 --port "$rp" --tls-port "$rt" --tls-cert-file "$c/server.crt" --tls-key-file "$c/server.key" \
  --tls-ca-cert-file "$c/ca.crt" --save "" --appendonly no --daemonize no --logfile "$work/redis.log" &
pids+=($!)
sleep 1
tls=(--tls --cacert "$c/ca.crt" --cert "$c/client.crt" --key "$c/client.key")
rps() { # port tls(0/1) size test n
  local extra=(); [ "$2" = 1 ] && extra=("${tls[@]}")
  redis-benchmark -p "$1" "${extra[@]}" -q -c 50 -n "$5" -d "$3" -t "$4" 2>&1 | tr '\r' '\n' \
    | sed -n 's/^[A-Z_0-9]*\( (first 100 elements)\)\{0,1\}: \([0-9.]*\) requests per second.*/\2/p' | tail -n 1
}
median() { printf "%s\n" "$@" | sort -g | sed -n 3p; }
echo "| workload (50 clients) | resp_server TLS | resp_server plain | resp_server TLS/plain | redis-server TLS | redis-server plain | redis-server TLS/plain | ratio of ratios |"
echo "|---|---|---|---|---|---|---|---|"
for w in "32 set 50000" "32 get 50000" "32768 set 10000" "32768 get 10000" "32768 lrange_100 500"; do
  read -r size test n <<< "$w"
  n=$((n * scale))
  # Five interleaved rounds; each cell is its median (wall clock drifts ~20% here).
  A=(); B=(); X=(); Y=()
  for _ in 1 2 3 4 5; do
    A+=("$(rps "$ct" 1 "$size" "$test" "$n")"); B+=("$(rps "$cp" 0 "$size" "$test" "$n")")
    X+=("$(rps "$rt" 1 "$size" "$test" "$n")"); Y+=("$(rps "$rp" 0 "$size" "$test" "$n")")
  done
  a=$(median "${A[@]}"); b=$(median "${B[@]}"); x=$(median "${X[@]}"); y=$(median "${Y[@]}")
  awk -v s="$size" -v t="$test" -v a="$a" -v b="$b" -v x="$x" -v y="$y" \
    'BEGIN { printf "| %s %s B | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.2fx |\n", toupper(t), s, a, b, a/b, x, y, x/y, (a/b)/(x/y) }'
done
