#!/usr/bin/env bash
# Builds the C client libraries people link, from their registries' sources, each with its
# own OpenSSL TLS and with the conntls transport of contrib/:
#   target/clients/hiredis-1.2.0   Debian 13's hiredis (apt source --tar-only hiredis 1.2.0-6):
#     libhiredis.a, libhiredis_ssl.a (USE_SSL=1, hiredis's own make) and
#     libhiredis_conntls.a (contrib/hiredis/hiredis_conntls.c), headers in the tree
#   target/clients/libvalkey-0.5.0 libvalkey from PyPI's libvalkey 4.2.1 sdist
#     (pip download --no-binary :all: --no-deps): libvalkey.a (its src/*.c but rdma.c),
#     libvalkey_tls.a (its tls.c) and libvalkey_conntls.a (contrib/libvalkey)
# Fetched sources are never committed; a finished build is reused. Prints the trees.
#   scripts/clients.sh [hiredis|libvalkey ...]   default: both
# conntls must be built first (make): the transports compile against include/conntls.h.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root=$top/target/clients
cflags=(-std=c99 -O2 -g -fPIC -Wall -D_GNU_SOURCE)
[ -f "$top/target/release/libconntls.so.0" ] || { echo "clients: run make first" >&2; exit 1; }
libs=("$@")
[ ${#libs[@]} -gt 0 ] || libs=(hiredis libvalkey)

# Compiles `file` (in `dir`) into `archive` with the include directories given.
archive() {
  local archive=$1 dir=$2; shift 2
  local objects=()
  for src in "$@"; do
    case $src in -I*) continue ;; esac
    cc "${cflags[@]}" $(printf '%s\n' "$@" | grep '^-I' || true) -I"$top/include" -c "$dir/$src" -o "$dir/${src%.c}.o"
    objects+=("$dir/${src%.c}.o")
  done
  rm -f "$archive"
  ar rcs "$archive" "${objects[@]}"
}

hiredis() {
  local src=$top/target/src/hiredis-1.2.0 tree=$root/hiredis-1.2.0
  if [ ! -f "$src/tree.ok" ]; then
    rm -rf "$src"
    "$top/scripts/debian-source.sh" hiredis 1.2.0-6 "$src" --tar-only >&2
    tar -xzf "$src/hiredis_1.2.0.orig.tar.gz" -C "$src"
    touch "$src/tree.ok"
  fi
  if [ ! -f "$tree/libhiredis_ssl.a" ]; then
    rm -rf "$tree"
    mkdir -p "$root"
    cp -a "$src/hiredis-1.2.0" "$tree"
    make -C "$tree" -j"$(nproc)" USE_SSL=1 static >"$tree/build.log" 2>&1 ||
      { tail -n 40 "$tree/build.log" >&2; echo "clients: hiredis build failed" >&2; exit 1; }
  fi
  for f in hiredis/hiredis_conntls.c hiredis/hiredis_conntls.h common/conntls_client.h; do
    cp "$top/contrib/$f" "$tree/"
  done
  archive "$tree/libhiredis_conntls.a" "$tree" -I"$tree" hiredis_conntls.c
  echo "$tree"
}

libvalkey() {
  local src=$top/target/src/libvalkey tree=$root/libvalkey-0.5.0
  if [ ! -f "$src/tree.ok" ]; then
    rm -rf "$src"
    mkdir -p "$src"
    local venv=$top/target/clients-venv
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" download -q --no-binary :all: --no-deps libvalkey==4.2.1 -d "$src" >&2
    sha256sum "$src"/libvalkey-4.2.1.tar.gz >&2
    tar -xzf "$src/libvalkey-4.2.1.tar.gz" -C "$src"
    touch "$src/tree.ok"
  fi
  local vendor=$src/libvalkey-4.2.1/vendor/libvalkey
  if [ ! -f "$tree/libvalkey_tls.a" ]; then
    rm -rf "$tree"
    mkdir -p "$root"
    cp -a "$vendor" "$tree"
    local sources=()
    for f in "$tree"/src/*.c; do
      case ${f##*/} in rdma.c|tls.c) ;; *) sources+=("${f##*/}") ;; esac
    done
    archive "$tree/libvalkey.a" "$tree/src" -I"$tree/include/valkey" -I"$tree/src" "${sources[@]}"
    archive "$tree/libvalkey_tls.a" "$tree/src" -I"$tree/include/valkey" -I"$tree/src" tls.c
  fi
  cp "$top/contrib/libvalkey/valkey_conntls.c" "$top/contrib/common/conntls_client.h" "$tree/src/"
  cp "$top/contrib/libvalkey/valkey_conntls.h" "$tree/include/valkey/"
  archive "$tree/libvalkey_conntls.a" "$tree/src" -I"$tree/include/valkey" -I"$tree/src" valkey_conntls.c
  echo "$tree"
}

for lib in "${libs[@]}"; do
  case $lib in
    hiredis|libvalkey) "$lib" ;;
    *) echo "clients: unknown library $lib (known: hiredis libvalkey)" >&2; exit 2 ;;
  esac
done
