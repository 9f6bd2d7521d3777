#!/usr/bin/env bash
# Builds the servers Debian ships, stock and on conntls, from Debian's source packages:
#   target/servers/<server>/stock    BUILD_TLS=yes, the server's own src/tls.c
#   target/servers/<server>/conntls  contrib/<program>/tls.c in place of src/tls.c, with
#                                    contrib/common/conntls_glue.h beside it (Valkey: also
#                                    its clients patch, the clients on contrib/hiredis in
#                                    8.1.1, on contrib/libvalkey in 9.1)
# and, for Valkey, its TLS as a loadable module (BUILD_TLS=module):
#   target/servers/<server>/module          stock, untouched: the server a distribution
#                                           would ship, and stock's src/valkey-tls.so
#   target/servers/<server>/conntls-module  the module tree again with
#                                           contrib/valkey/tls.c: its src/valkey-tls.so is
#                                           the conntls module for that server
# Valkey 9.1 is Debian unstable's: whichever 9.1.x it serves (scripts/debian-source.sh
# prints it; target/src/valkey-9.1/version keeps it), in target/servers/valkey-9.1.
# Each conntls tree is derived from its stock counterpart (conntls from stock,
# conntls-module from module): a copy of the built tree, tls.c replaced (and the patch
# applied, the client library in deps/ rebuilt), so make rebuilds a few objects and
# relinks. Both sides build with conntls's include directory (only conntls.h is in it), so
# their compiler flags match and the server's make does not start from clean.
# Module builds get the same SOURCE_DATE_EPOCH and no git metadata, as a distribution's
# build does: the build id a TLS module must match (src/mkreleasehdr.sh) is then made of the
# version and that date alone. Every tree of one server comes from the same fetched source.
# A finished build is reused: make rebuilds only what changed (the adapter is copied only
# when it differs), and a tree whose build flags, patch or files under deps/ changed is
# rebuilt from clean.
#
#   scripts/servers.sh [SERVER...]   default: every server below (redis-7.0.15 ...)
#   FLAVOURS="stock conntls" builds only those trees (default: all of each server);
#   SANITIZER=address passes the servers' own SANITIZER switch (the tests use it);
#   a Redis-family flavour with "+tsan" (stock+tsan, conntls+tsan), never built unless
#   FLAVOURS names it, is that flavour with ThreadSanitizer whatever SANITIZER says,
#   libc's malloc (the server's jemalloc reuses memory TSan never saw freed) and
#   tests/server-tsan-fences.h (fences TSan can see);
#   ROOT=dir builds elsewhere (default target/servers). Prints the trees it built.
#
# conntls must be built first (make): the conntls trees link target/release/libconntls.so.0
# with an rpath to it. The Makefile variables OPENSSL_CFLAGS and LIBSSL_LIBS reach the
# servers' own objects only, so the bundled dependencies keep their own flags.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/scripts/conntls-trees.sh"
root=${ROOT:-$top/target/servers}
sanitizer=${SANITIZER:-}

# Debian's exact source packages: "package version [--tar-only]".
declare -A package=(
  [redis-7.0.15]="redis 5:7.0.15-1~deb12u10"
  [redis-8.0.2]="redis 5:8.0.2-3+deb13u3 --tar-only"
  [valkey-8.1.1]="valkey 8.1.1+dfsg1-3+deb13u3 --tar-only"
  [valkey-9.1]="valkey 9.1.x"
  [memcached-1.6.18]="memcached 1.6.18-1+deb12u1"
  [memcached-1.6.38]="memcached 1.6.38-1 --tar-only"
)
declare -A flavours=(
  [redis-7.0.15]="stock conntls" [redis-8.0.2]="stock conntls"
  [valkey-8.1.1]="stock conntls module conntls-module"
  [valkey-9.1]="stock conntls module conntls-module"
  [memcached-1.6.18]="stock conntls" [memcached-1.6.38]="stock conntls"
)
# Debian's 7.0.15 tree builds only with the system's jemalloc, as debian/rules builds it:
# its USE_SYSTEM_JEMALLOC patch tests `#if USE_SYSTEM_JEMALLOC == yes`, true when the
# macro is undefined, so with the bundled jemalloc the objects call unprefixed names the
# bundled library does not have. (AddressSanitizer builds use libc's malloc.)
declare -A server_flags=([redis-7.0.15]="USE_SYSTEM_JEMALLOC=yes")
# What a distribution's build sets from its changelog; any fixed date does here.
source_date_epoch=1735689600
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(redis-7.0.15 redis-8.0.2 valkey-8.1.1 valkey-9.1 memcached-1.6.18 memcached-1.6.38)

[ -f "$top/target/release/libconntls.so.0" ] || { echo "servers: run make first" >&2; exit 1; }
no_git=$top/target/no-git
mkdir -p "$no_git"
printf '#!/bin/sh\nexit 127\n' > "$no_git/git"
chmod +x "$no_git/git"

# The upstream tree of one server, with Debian's patches where the .dsc came whole.
source_tree() {
  local s=$1 version=${1#*-} src=$top/target/src/$1
  read -r name pkg_version tar_only <<<"${package[$s]}"
  if [ ! -f "$src/tree.ok" ]; then
    rm -rf "$src"
    "$top/scripts/debian-source.sh" "$name" "$pkg_version" "$src" $tar_only >&2
    if [ -n "$tar_only" ]; then
      tar -xf "$src/${name}_${version}"*.orig.tar.* -C "$src"
    fi
    if [[ $pkg_version == *.x ]]; then # a line: the tree is named after the version fetched
      local got=$(cd "$src" && ls -d "$name-${version}".*/ | head -n 1)
      [ -n "$got" ] || { echo "servers: no $name-$version.* tree in $src" >&2; exit 1; }
      echo "${got%/}" | sed "s/^$name-//" > "$src/version"
      mv "$src/${got%/}" "$src/$s"
    fi
    [ -f "$src/$s/Makefile.in" ] || [ -d "$src/$s/src" ] || { echo "servers: no tree $s in $src" >&2; exit 1; }
    touch "$src/tree.ok"
  fi
  echo "$src/$s"
}

build() {
  local s=$1 flavour=$2 tree=$3 dest=$root/$1/$2
  # kind: the flavour without its sanitizer suffix (+tsan)
  local kind=${flavour%+tsan} suffix=${flavour#"${flavour%+tsan}"} sanitize=$sanitizer
  local flags=(${server_flags[$s]:-})
  case $kind in
    stock|conntls) flags+=(BUILD_TLS=yes) ;;
    *module) flags+=(BUILD_TLS=module) ;;
  esac
  # REDIS_CFLAGS reaches the server's own objects (Valkey takes the name too).
  if [ -n "$suffix" ]; then sanitize=thread; flags+=(MALLOC=libc REDIS_CFLAGS="-include $top/tests/server-tsan-fences.h"); fi
  [ -n "$sanitize" ] && flags+=(SANITIZER="$sanitize")
  flags+=(OPENSSL_CFLAGS="-I$top/include")
  # A conntls tree starts as a copy of its built stock counterpart.
  local base=
  if [[ $kind == conntls* ]]; then
    flags+=(LIBSSL_LIBS="-L$top/target/release -Wl,-rpath,$top/target/release -lconntls -lssl")
    case $kind in conntls) base=$root/$s/stock$suffix ;; conntls-module) base=$root/$s/module$suffix ;; esac
    [ -f "$base/build.flags" ] || { echo "servers: $s $flavour is derived from ${base##*/}: build that first" >&2; exit 1; }
  fi
  local files=() patch=
  if [[ $kind == conntls* ]]; then
    files=($(conntls_files "$s"))
  fi
  if [ "$kind" = conntls ] && [ -n "${clients_patch[$s]:-}" ]; then
    patch=$top/contrib/${clients_patch[$s]}
    files=($(conntls_files "$s" with-clients))
    flags+=(CONNTLS_CFLAGS="-I$top/include") # what pkg-config --cflags conntls gives when installed
  fi
  local settings="${flags[*]}"
  # The server's make rebuilds what changed in src/, but neither applies patches nor
  # rebuilds its dependencies once built: a changed flag, patch or file under deps/ means a
  # build from clean.
  local fresh= applied=$dest/conntls.patch
  if [ ! -f "$dest/build.flags" ] || [ "$(cat "$dest/build.flags")" != "$settings" ]; then fresh=1; fi
  if [ -n "$patch" ]; then cmp -s "$applied" "$patch" || fresh=1; elif [ -f "$applied" ]; then fresh=1; fi
  for f in "${files[@]}"; do
    if [[ ${f#*:} == deps/* ]] && ! cmp -s "$top/contrib/${f%:*}" "$dest/${f#*:}/$(basename "${f%:*}")"; then fresh=1; fi
  done
  [ -n "$base" ] && [ "$base/build.flags" -nt "$dest/build.flags" ] && fresh=1
  if [ -n "$fresh" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    if [ -n "$base" ]; then
      cp -a "$base/." "$dest/"
      rm -f "$dest/build.flags" "$dest/build.log"
    else
      cp -a "$tree/." "$dest/"
    fi
    if [ -n "$patch" ]; then
      patch -d "$dest" -p1 -s -f <"$patch" >&2
      cp "$patch" "$applied"
    fi
  fi
  for f in "${files[@]}"; do
    local from=$top/contrib/${f%:*} to=$dest/${f#*:}/$(basename "${f%:*}")
    cmp -s "$from" "$to" || cp "$from" "$to"
  done
  if [ -n "$fresh" ]; then
    # A copied tree's deps are built: the patch's changes to them are rebuilt here.
    if [ -n "$base" ] && [ -n "$patch" ]; then
      PATH="$no_git:$PATH" make -C "$dest/deps" "${clients_dep[$s]}" "${flags[@]}" >"$dest/deps.log" 2>&1 \
        || { tail -n 40 "$dest/deps.log" >&2; echo "servers: deps of $s $flavour failed" >&2; exit 1; }
    fi
    echo "$settings" > "$dest/build.flags"
  fi
  echo "servers: building $s $flavour ($settings)" >&2
  # No git, as in a distribution's build chroot: mkreleasehdr.sh then records sha 00000000
  # and dirty 0. (The trees sit inside this repository's checkout, whose commit would
  # become their sha; and with git but no repository its `git diff -- ../src ../deps`
  # compares the two directories, so the "dirty" count, part of the build id, would change
  # with every changed line of src/, tls.c included.)
  if ! PATH="$no_git:$PATH" SOURCE_DATE_EPOCH=$source_date_epoch \
       make -C "$dest" -j"$(nproc)" "${flags[@]}" >"$dest/build.log" 2>&1; then
    tail -n 60 "$dest/build.log" >&2
    rm -f "$dest/build.flags" # the server's make records its settings even when deps failed: next time from clean
    echo "servers: build of $s $flavour failed (log: $dest/build.log)" >&2
    exit 1
  fi
  echo "$dest"
}

# memcached: autotools. Each tree is configured and built from clean when its settings or
# patch change (about half a minute; no derived copies): stock is Debian's tree with
# `--enable-tls`; conntls is the same with conntls-trees.sh's files and patch, linked with
# libconntls.
build_memcached() {
  local s=$1 flavour=$2 tree=$3 dest=$root/$1/$2
  local flags=(--enable-tls) patch=
  if [ -n "$sanitizer" ]; then
    flags+=(CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=$sanitizer" LDFLAGS="-fsanitize=$sanitizer")
  fi
  if [ "$flavour" = conntls ]; then
    flags+=(CPPFLAGS="-I$top/include" LIBS="-L$top/target/release -Wl,-rpath,$top/target/release -lconntls")
    patch=$top/contrib/${clients_patch[$s]}
  fi
  local settings="${flags[*]}" fresh= applied=$dest/conntls.patch
  if [ ! -f "$dest/build.flags" ] || [ "$(cat "$dest/build.flags")" != "$settings" ]; then fresh=1; fi
  if [ -n "$patch" ]; then cmp -s "$applied" "$patch" || fresh=1; fi
  if [ -n "$fresh" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -a "$tree/." "$dest/"
    if [ -n "$patch" ]; then
      patch -d "$dest" -p1 -s -f <"$patch" >&2
      cp "$patch" "$applied"
    fi
  fi
  if [ "$flavour" = conntls ]; then
    for f in $(conntls_files "$s"); do
      local from=$top/contrib/${f%:*} to=$dest/${f#*:}/$(basename "${f%:*}")
      cmp -s "$from" "$to" || cp "$from" "$to"
    done
  fi
  echo "servers: building $s $flavour ($settings)" >&2
  if [ -n "$fresh" ]; then
    (cd "$dest" && ./configure "${flags[@]}") >"$dest/configure.log" 2>&1 \
      || { tail -n 40 "$dest/configure.log" >&2; echo "servers: configure of $s $flavour failed" >&2; exit 1; }
  fi
  if ! make -C "$dest" -j"$(nproc)" >"$dest/build.log" 2>&1; then
    tail -n 60 "$dest/build.log" >&2
    echo "servers: build of $s $flavour failed (log: $dest/build.log)" >&2
    exit 1
  fi
  echo "$settings" > "$dest/build.flags"
  echo "$dest"
}

for s in "${servers[@]}"; do
  [ -n "${package[$s]:-}" ] || { echo "servers: unknown server $s (known: ${!package[*]})" >&2; exit 2; }
  tree=$(source_tree "$s")
  for flavour in ${FLAVOURS:-${flavours[$s]}}; do
    [[ " ${flavours[$s]} " == *" ${flavour%+tsan} "* ]] || continue
    case $s in
      memcached-*) [ "$flavour" = "${flavour%+tsan}" ] || { echo "servers: no +tsan flavour of $s" >&2; exit 2; }
                   build_memcached "$s" "$flavour" "$tree" ;;
      *) build "$s" "$flavour" "$tree" ;;
    esac
  done
done
