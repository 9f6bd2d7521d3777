#!/usr/bin/env bash
# Instructions per MiB in the writer (user space: library + OpenSSL, not the kernel) for
# each write strategy and mix, counted by callgrind: exact and repeatable, unlike wall time.
# usage: benches/writev_instructions.sh BENCH_BINARY [MIB]
set -euo pipefail
bench=$1
mib=${2:-8}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mixes=("64 B x 256" "100 B x 1000" "512 B x 64" "4 KiB x 16" "16 KiB x 8" "64 KiB x 4" "1 MiB x 1")
# "A vs B" is B's instructions over A's: how many times less work A does. No writer that
# gathers can do less than the ceiling, which encrypts the same records from one buffer, so
# "ceiling vs valkey" and "ceiling vs per-iov" bound what conntls can reach against them.
echo "| mix | ceiling Ir/MiB | valkey | per-iov | conntls | conntls vs valkey (bound) | conntls vs per-iov (bound) | conntls vs ceiling |"
echo "|---|---|---|---|---|---|---|---|"
for m in "${!mixes[@]}"; do
  ir=()
  for w in 0 1 2 3; do
    # per-iov on tiny pieces is slow under valgrind; its count scales linearly, so 1 MiB does.
    size=$mib; if [ "$w" = 2 ] && [ "$m" -le 2 ]; then size=1; fi
    valgrind --tool=callgrind --toggle-collect=run_writer --callgrind-out-file="$out/cg.$m.$w" \
      "$bench" count "$w" "$m" "$size" >/dev/null 2>&1
    total=$(sed -n 's/^summary: //p; s/^totals: //p' "$out/cg.$m.$w" | head -n 1)
    ir+=("$(awk -v t="$total" -v s="$size" 'BEGIN { printf "%.0f", t / s }')")
  done
  awk -v name="${mixes[$m]}" -v c="${ir[0]}" -v v="${ir[1]}" -v p="${ir[2]}" -v t="${ir[3]}" \
    'BEGIN { printf "| %s | %.2fM | %.2fM | %.2fM | %.2fM | %.2fx (%.2fx) | %.1fx (%.1fx) | %.2fx |\n", name, c/1e6, v/1e6, p/1e6, t/1e6, v/t, v/c, p/t, p/c, c/t }'
done
