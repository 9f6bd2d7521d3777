#!/usr/bin/env bash
# Instructions a whole server executes per small request, stock against conntls (callgrind:
# exact, unlike wall clock here). Each server runs under callgrind twice, serving the stock
# tree's benchmark over TLS with one client: N1 GETs of a 32-byte value, then N2. The
# difference divided by N2-N1 is one GET's cost, start-up, handshakes and the benchmark's
# own set-up cancelled out; with one client every request is one trip of the event loop.
# usage: benches/server_instructions.sh STOCK_TREE CONNTLS_TREE [N1 N2]
#   TEST=set (or another valkey-benchmark test) measures that instead of get;
#   SERVER_OPTIONS passes options to both servers;
#   KEEP_BUFFERS=1 gives the conntls server's contexts release-buffers no (through
#   benches/keep_buffers_shim.c: the adapters have no option for it);
#   PROFILE=n also prints, per request, the n functions whose own instructions differ most
#   between the two servers (callgrind_annotate of both runs, differenced).
set -euo pipefail
cd "$(dirname "$0")/.."
stock=$1 conntls=$2 n1=${3:-2000} n2=${4:-6000} test=${TEST:-get}
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "none of $*" >&2; exit 1; }
bench=$(first "$stock"/src/{valkey,redis}-benchmark)
cli=$(first "$stock"/src/{valkey,redis}-cli)
tls=$stock/tests/tls
[ -f "$tls/ca.crt" ] || (cd "$stock" && ./utils/gen-test-certs.sh >/dev/null 2>&1)
cert=$(first "$tls"/{valkey,redis}.crt)
out=target/bench-instructions
mkdir -p "$out"
client=(--tls --cacert "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key")
port=21811
pid=
preload=
if [ "${KEEP_BUFFERS:-}" = 1 ]; then
  mkdir -p target/bench-system
  cc -shared -fPIC -O2 -Iinclude -o target/bench-system/keep_buffers_shim.so benches/keep_buffers_shim.c -ldl
  preload=$PWD/target/bench-system/keep_buffers_shim.so
fi
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

# run NAME TREE N: the server under callgrind, N requests; prints its total instructions.
run() {
  local name=$1 tree=$2 n=$3 file=$out/$1.$3.callgrind
  local server
  server=$(first "$tree"/src/{valkey,redis}-server)
  local with=
  [ "$name" = conntls ] && with=$preload
  LD_PRELOAD=$with valgrind --tool=callgrind --callgrind-out-file="$file" "$server" --port 0 --tls-port $port --bind 127.0.0.1 \
    --save "" --appendonly no --logfile /dev/null --hz 1 --dynamic-hz no \
    --tls-cert-file "$cert" --tls-key-file "${cert%.crt}.key" --tls-ca-cert-file "$tls/ca.crt" \
    ${SERVER_OPTIONS:-} 2>/dev/null &
  pid=$!
  for _ in $(seq 600); do "$cli" -p $port "${client[@]}" PING >/dev/null 2>&1 && break; sleep 0.1; done
  "$cli" -p $port "${client[@]}" SET key:__rand_int__ "$(printf '%032d' 0)" >/dev/null
  "$bench" -p $port "${client[@]}" -c 1 -n "$n" -d 32 -t "$test" -q >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  sed -n 's/^summary: *//p;s/^totals: *//p' "$file" | head -n 1
}

declare -A total
for name in stock conntls; do
  tree=$stock; [ $name = conntls ] && tree=$conntls
  for n in "$n1" "$n2"; do total[$name $n]=$(run $name "$tree" "$n"); done
done
per() { echo $(( (total[$1 $n2] - total[$1 $n1]) / (n2 - n1) )); }
s=$(per stock) c=$(per conntls)
echo "| server ($test of 32 B, one client) | instructions per request | conntls/stock |"
echo "|---|---|---|"
echo "| stock | $s | |"
echo "| conntls | $c | $(awk -v c="$c" -v s="$s" 'BEGIN { printf "%.3f", c / s }') |"

[ -n "${PROFILE:-}" ] || exit 0
# Own instructions per function per request: (N2 run - N1 run) / (N2 - N1), for both
# servers; the functions whose figures differ most between them.
for name in stock conntls; do
  for n in "$n1" "$n2"; do
    callgrind_annotate --threshold=100 "$out/$name.$n.callgrind" > "$out/$name.$n.functions" 2>/dev/null
  done
done
python3 - "$out" "$n1" "$n2" "$PROFILE" <<'EOF'
import os, re, sys
out, n1, n2, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def per_request(name):
    counts = {}
    for n, sign in ((n2, 1), (n1, -1)):
        for line in open(f"{out}/{name}.{n}.functions"):
            # "  1,234 ( 0.5%)  file:function [object]"
            m = re.match(r"^\s*([\d,]+) \([ \d.]+%\)\s+(\S+)(?: \[(\S+)\])?$", line.rstrip())
            if not m or m.group(2) == "PROGRAM":
                continue
            function = m.group(2).split(":", 1)[-1] + (f" ({os.path.basename(m.group(3))})" if m.group(3) else "")
            counts[function] = counts.get(function, 0) + sign * int(m.group(1).replace(",", ""))
    return {f: v / (n2 - n1) for f, v in counts.items()}
stock, conntls = per_request("stock"), per_request("conntls")
rows = sorted(set(stock) | set(conntls), key=lambda f: -abs(conntls.get(f, 0) - stock.get(f, 0)))
print(f"\n| function (own instructions per request) | stock | conntls | conntls - stock |")
print("|---|---|---|---|")
for f in rows[:top]:
    s, c = stock.get(f, 0), conntls.get(f, 0)
    print(f"| {f} | {s:.0f} | {c:.0f} | {c - s:+.0f} |")
EOF
