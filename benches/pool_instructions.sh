#!/usr/bin/env bash
# Instructions per small round trip (benches/pool_data_path.c: a 32-byte write and read each
# way, with the pending checks a server makes) with no pool, and with 1 and 1000
# connections parked inside a handshake pool, counted by callgrind: exact and repeatable.
# usage: benches/pool_instructions.sh POOL_DATA_PATH_BINARY [ROUNDS]
set -euo pipefail
bench=$1
rounds=${2:-2000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| connections inside a pool | instructions per round trip |"
echo "|---|---|"
for inside in 0 1 1000; do
  valgrind --tool=callgrind --toggle-collect=run_round_trips --callgrind-out-file="$out/cg.$inside" \
    "$bench" "$inside" "$rounds" >/dev/null 2>&1
  total=$(sed -n 's/^summary: //p; s/^totals: //p' "$out/cg.$inside" | head -n 1)
  awk -v i="$inside" -v t="$total" -v r="$rounds" 'BEGIN { printf "| %d | %.0f |\n", i, t / r }'
done
