#!/usr/bin/env bash
# Instructions per handshake (client and server together, both in one thread), plain
# OpenSSL server vs conntls server, counted by callgrind: exact and repeatable. The client
# is the same plain OpenSSL client in both, so the difference is the server side.
# usage: benches/handshake_instructions.sh BENCH_BINARY [N]
set -euo pipefail
bench=$1
n=${2:-50}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| certificate | handshake | plain Ir/handshake | conntls Ir/handshake | conntls/plain | conntls - plain |"
echo "|---|---|---|---|---|---|"
for cert in 0 1; do
  for resumed in 0 1; do
    ir=()
    for kind in 0 1; do
      valgrind --tool=callgrind --toggle-collect=one --callgrind-out-file="$out/cg" "$bench" count "$kind" "$cert" "$resumed" "$n" >/dev/null 2>&1
      ir+=("$(sed -n 's/^summary: //p' "$out/cg" | head -n 1)")
    done
    awk -v c="$([ $cert = 0 ] && echo 'ECDSA P-256' || echo RSA-2048)" -v h="$([ $resumed = 0 ] && echo full || echo resumed)" \
        -v p="${ir[0]}" -v t="${ir[1]}" -v n="$n" \
      'BEGIN { printf "| %s | %s | %.0f | %.0f | %.4fx | %+.0f |\n", c, h, p/n, t/n, t/p, (t-p)/n }'
  done
done
