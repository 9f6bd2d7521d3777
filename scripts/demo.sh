#!/usr/bin/env bash
# The demo: a real TLS server on conntls under load, with a short report.
#  - builds examples/resp_server.c and examples/load_client.c against target/release
#  - makes throwaway certificates, and rotates the server's certificate every second
#  - loads the server with redis-benchmark --tls when installed, else with load_client
#    (conntls's own client mode), over TLS and plain TCP, 32 B values and then the seed
#    scenario (50 clients, 32 KiB values, 4 KiB server send buffer)
#  - prints requests/s, TLS/plain ratios, generations rotated, errors and disconnects
# Run it with `make demo` (which builds the library first).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d /tmp/conntls-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A step that fails says which and shows what the server and the clients wrote.
on_error() {
  echo "demo: failed at line $1: $2" >&2
  for f in server.err load.log; do
    [ -s "$work/$f" ] && { echo "--- $f (last lines)" >&2; tail -n 20 "$work/$f" >&2; }
  done
  return 0
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

lib=$root/target/release
mkdir -p "$work/bin" "$work/live"
for prog in resp_server load_client; do
  cc -std=c11 -O2 -Wall -Wextra -Werror -I"$root/include" "examples/$prog.c" -o "$work/bin/$prog" \
     -L"$lib" -Wl,-rpath,"$lib" -lconntls -lpthread
done
scripts/make-certs.sh "$work/certs" >/dev/null
certs=$work/certs
cp "$certs/server.crt" "$work/live/cert.pem"
cp "$certs/server.key" "$work/live/key.pem"

# Rotation: swap the live certificate and key every second (written aside, then renamed;
# the server's 1 s reload_if_changed picks them up, and any half-swapped pair is refused
# with the old generation kept). A server that is starting has no old generation to keep:
# it would refuse to start on a half-swapped pair, so start_server holds the swap's lock
# until the server has loaded its certificate.
lock=$work/live.lock
( i=0; exec 9>"$lock"; while true; do
    sleep 1; i=$((i + 1)); name=$([ $((i % 2)) = 1 ] && echo server2 || echo server)
    flock 9
    cp "$certs/$name.key" "$work/live/key.tmp"; cp "$certs/$name.crt" "$work/live/cert.tmp"
    mv "$work/live/key.tmp" "$work/live/key.pem"; mv "$work/live/cert.tmp" "$work/live/cert.pem"
    flock -u 9
  done ) &
pids+=($!)

start_server() { # extra args...; sets server_pid, tls_port, plain_port
  exec 8>"$lock"; flock 8
  "$work/bin/resp_server" --tls-port 0 --port 0 --cert "$work/live/cert.pem" --key "$work/live/key.pem" \
    --ca "$certs/ca.crt" "$@" > "$work/server.out" 2> "$work/server.err" 8>&- &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    grep -q "^resp_server: tls" "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  exec 8>&-
  tls_port='' plain_port=''
  read -r tls_port plain_port < <(sed -n 's/^resp_server: tls 127.0.0.1:\([0-9]*\), plain 127.0.0.1:\([0-9]*\)/\1 \2/p' "$work/server.out") || true
  [ -n "$tls_port" ] || { echo "demo: resp_server did not start" >&2; false; }
}

# Called in this shell, never in $(...): a subshell cannot wait for the server, and
# would read server.out before the server has written its stats line.
stop_server() { # variable: set to the server's stats line
  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  local line
  line=$(grep '^stats:' "$work/server.out") || { echo "demo: resp_server exited without its stats line" >&2; false; }
  printf -v "$1" '%s' "$line"
}

if command -v redis-benchmark >/dev/null; then
  client="redis-benchmark --tls"
  load() { # port tls(0/1) size tests requests -> "TEST rps" lines
    local tls_args=()
    [ "$2" = 1 ] && tls_args=(--tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    timeout 60 redis-benchmark -p "$1" "${tls_args[@]}" -q -c 50 -n "$5" -d "$3" -t "$4" 2>&1 | tr '\r' '\n' \
      | tee -a "$work/load.log" | sed -n 's/^\([A-Z_]*\): \([0-9.]*\) requests per second.*/\1 \2/p'
  }
else
  client="load_client (conntls client mode; redis-benchmark not installed)"
  load() {
    local tls_args=()
    [ "$2" = 1 ] && tls_args=(--tls --ca "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    "$work/bin/load_client" --port "$1" "${tls_args[@]}" --clients 50 --requests "$5" --size "$3" --tests "$4" 2>&1 \
      | tee -a "$work/load.log" | sed -n 's/^\([A-Z_]*\): \([0-9.]*\) requests per second.*/\1 \2/p'
  }
fi

report=()
row() { printf '  %-30s %-5s %10s %10s %9s  %s\n' "$@"; }
run_workload() { # label size tests requests [note for GET]
  local tls plain
  tls=$(load "$tls_port" 1 "$2" "$3" "$4")
  plain=$(load "$plain_port" 0 "$2" "$3" "$4")
  while read -r test rps; do
    local p note=""
    p=$(awk -v t="$test" '$1 == t { print $2 }' <<< "$plain")
    [ "$test" = GET ] && note=${5:-}
    report+=("$(row "$1" "$test" "$(printf '%.0f' "$rps")" "$(printf '%.0f' "$p")" \
                "$(awk -v a="$rps" -v b="$p" 'BEGIN { printf "%.2f", a / b }')" "$note")")
  done <<< "$tls"
}

start=$(date +%s)
start_server
run_workload "32 B values, 50 clients" 32 set,get 100000
stop_server stats1
start_server --sndbuf 4096
# redis-benchmark's OpenSSL client delays its ACKs of the server's records; through a
# 4 KiB send buffer the server can only send once they arrive (see the note below).
[ "$client" = "redis-benchmark --tls" ] && note="<- limited by the client's delayed ACKs (note 1)" || note=""
run_workload "32 KiB, 50 clients, 4K sndbuf" 32768 set,get 20000 "$note"
stop_server stats2

sum() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) s += kv[2] } } END { print s + 0 }' <<< "$stats1"$'\n'"$stats2"; }
rotated=$(( $(sum generation) - 2 ))
errors=$(( $(sum conn_errors) + $(sum protocol_errors) ))
# redis-benchmark prints "Error: ..." / "Error from server: ..." / "...reset by peer";
# load_client prints "errors=N, disconnects=N".
client_errors=$(grep -ciE "error:|error from|reset by|errors=[1-9]|disconnects=[1-9]" "$work/load.log" || true)

echo
echo "conntls demo: examples/resp_server.c on conntls, loaded by $client"
row workload test "TLS rps" "plain rps" TLS/plain ""
printf '%s\n' "${report[@]}"
echo "  certificate generations rotated during the run: $rotated"
echo "  server: handshake failures $(sum handshake_errors), connection errors $errors; client errors/disconnects $client_errors"
echo "  took $(( $(date +%s) - start )) s"
if [ -n "$note" ]; then
  echo "  note 1: 32 KiB GETs through a 4 KiB send buffer wait on the client's delayed ACKs"
  echo "          (~40 ms each): conntls's own client acknowledges full records at once;"
  echo "          redis-benchmark's OpenSSL client does not. Not a server limit."
fi
[ "$errors" = 0 ] && [ "$(sum handshake_errors)" = 0 ] && [ "$client_errors" = 0 ]
