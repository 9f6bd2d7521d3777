#!/usr/bin/env bash
# Builds Redis as Debian ships it, stock and on conntls, from Debian's source packages:
#   target/servers/redis-<version>/stock    BUILD_TLS=yes, Redis's own src/tls.c
#   target/servers/redis-<version>/conntls  contrib/redis/tls.c in place of src/tls.c, with
#                                           contrib/common/conntls_glue.h beside it
# each with src/redis-server, src/redis-cli and src/redis-benchmark where the tree puts them.
# Both trees of a version come from the same fetched source. A finished build is reused:
# make rebuilds only what changed (tls.c is copied only when it differs), and a tree whose
# build flags changed is rebuilt from clean.
#
#   scripts/redis-servers.sh [VERSION...]        default: every version below
#   FLAVOURS="stock" builds only those trees; SANITIZER=address passes Redis's own
#   SANITIZER switch (the tests use it); ROOT=dir
#   builds elsewhere (default target/servers).
#
# conntls must be built first (make): the conntls trees link target/release/libconntls.so.0
# with an rpath to it. Redis's Makefile variables OPENSSL_CFLAGS and LIBSSL_LIBS reach
# Redis's own objects only, so the bundled dependencies keep their own flags (jemalloc -O3).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root=${ROOT:-$top/target/servers}
sanitizer=${SANITIZER:-}

# Debian's exact versions: (upstream version, source package version, how to fetch).
declare -A package=([7.0.15]="5:7.0.15-1~deb12u10" [8.0.2]="5:8.0.2-3+deb13u3")
declare -A tar_only=([7.0.15]="" [8.0.2]="--tar-only")
# Debian's 7.0.15 tree builds only with the system's jemalloc, as debian/rules builds it:
# its USE_SYSTEM_JEMALLOC patch tests `#if USE_SYSTEM_JEMALLOC == yes`, true when the
# macro is undefined, so with the bundled jemalloc the objects call unprefixed names the
# bundled library does not have. (AddressSanitizer builds use libc's malloc.)
declare -A version_flags=([7.0.15]="USE_SYSTEM_JEMALLOC=yes" [8.0.2]="")
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(7.0.15 8.0.2)

[ -f "$top/target/release/libconntls.so.0" ] || { echo "redis-servers: run make first" >&2; exit 1; }

# The upstream tree of one version, with Debian's patches where the .dsc came whole.
source_tree() {
  local v=$1 src=$top/target/src/redis-$v
  if [ ! -f "$src/tree.ok" ]; then
    rm -rf "$src"
    "$top/scripts/debian-source.sh" redis "${package[$v]}" "$src" ${tar_only[$v]} >&2
    if [ -n "${tar_only[$v]}" ]; then
      tar -xf "$src"/redis_"$v".orig.tar.* -C "$src"
    fi
    [ -d "$src/redis-$v/src" ] || { echo "redis-servers: no tree in $src" >&2; exit 1; }
    touch "$src/tree.ok"
  fi
  echo "$src/redis-$v"
}

build() {
  local v=$1 flavour=$2 tree=$3 dest=$root/redis-$v/$2
  local flags=(BUILD_TLS=yes ${version_flags[$v]})
  [ -n "$sanitizer" ] && flags+=(SANITIZER="$sanitizer")
  if [ "$flavour" = conntls ]; then
    flags+=(OPENSSL_CFLAGS="-I$top/include"
            LIBSSL_LIBS="-L$top/target/release -Wl,-rpath,$top/target/release -lconntls -lssl")
  fi
  local settings="${flags[*]}"
  if [ ! -f "$dest/build.flags" ] || [ "$(cat "$dest/build.flags")" != "$settings" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -a "$tree/." "$dest/"
    echo "$settings" > "$dest/build.flags"
  fi
  if [ "$flavour" = conntls ]; then
    for f in redis/tls.c common/conntls_glue.h; do
      cmp -s "$top/contrib/$f" "$dest/src/${f#*/}" || cp "$top/contrib/$f" "$dest/src/${f#*/}"
    done
  fi
  echo "redis-servers: building redis $v $flavour ($settings)" >&2
  if ! make -C "$dest" -j"$(nproc)" "${flags[@]}" >"$dest/build.log" 2>&1; then
    tail -n 60 "$dest/build.log" >&2
    echo "redis-servers: build of redis $v $flavour failed (log: $dest/build.log)" >&2
    exit 1
  fi
  for b in redis-server redis-cli redis-benchmark; do echo "$dest/src/$b"; done
}

for v in "${versions[@]}"; do
  [ -n "${package[$v]:-}" ] || { echo "redis-servers: unknown version $v (known: ${!package[*]})" >&2; exit 2; }
  tree=$(source_tree "$v")
  for flavour in ${FLAVOURS:-stock conntls}; do build "$v" "$flavour" "$tree"; done
done
