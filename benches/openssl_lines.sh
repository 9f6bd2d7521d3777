#!/usr/bin/env bash
# The write-path, handshake and idle-memory benchmarks on each OpenSSL line, each against
# bare OpenSSL of the same version: the system's (3.0) and the matrix's 3.5 and 4.0
# (target/openssl-<line>, made by `make matrix-line LINE=<line>` or `make test`).
# usage: benches/openssl_lines.sh [WRITEV_MIB [HANDSHAKES [PAIRS]]]   (from the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2}
handshakes=${2:-20}
pairs=${3:-300}
export CONNTLS_CERTS=${CONNTLS_CERTS:-target/tmp/certs}
[ -f "$CONNTLS_CERTS/ca.crt" ] || scripts/make-certs.sh "$CONNTLS_CERTS" >/dev/null
for line in system 3.5 4.0; do
  if [ "$line" = system ]; then
    lib=$PWD/target/release; ssl=(-lssl -lcrypto); inc=()
  else
    lib=$PWD/target/openssl-$line/release; prefix=$PWD/target/openssl-$line/openssl/install
    [ -f "$lib/libconntls.so.0" ] || { echo "no $lib/libconntls.so.0: run make matrix-line LINE=$line"; exit 1; }
    ssl=("$prefix"/lib*/libssl.a "$prefix"/lib*/libcrypto.a); inc=(-I"$prefix/include")
  fi
  bin=target/bench-$line
  mkdir -p "$bin"
  for b in writev_bench handshake_bench idle_memory; do
    cc -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude "${inc[@]}" "benches/$b.c" -o "$bin/$b" \
       -L"$lib" -Wl,-rpath,"$lib" -lconntls "${ssl[@]}" -lpthread -ldl
  done
  echo "## OpenSSL $line: $("$bin/idle_memory" "$CONNTLS_CERTS" 2 | head -n 1 | sed 's/;.*//; s/libconntls on //')"
  echo
  echo "| OpenSSL | groups | conntls | bare, RELEASE_BUFFERS | bare | conntls / bare (RELEASE_BUFFERS) |"
  echo "|---|---|---|---|---|---|"
  "$bin/idle_memory" "$CONNTLS_CERTS" "$pairs" | grep '^|'
  "$bin/idle_memory" "$CONNTLS_CERTS" "$pairs" X25519 | grep '^|'
  echo
  benches/writev_instructions.sh "$bin/writev_bench" "$mib"
  echo
  benches/handshake_instructions.sh "$bin/handshake_bench" "$handshakes"
  echo
done
