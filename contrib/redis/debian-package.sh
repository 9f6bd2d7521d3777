#!/usr/bin/env bash
# Turns an unpacked Debian redis source package (Debian 12's 5:7.0.15-1~deb12u10, unpacked
# with its patches applied, as `apt-get source redis` or `dpkg-source -x` leave it) into one
# that builds on conntls, the way a distribution would carry it:
#   - debian/patches/conntls.patch (DEP-3): src/tls.c replaced by contrib/redis/tls.c, with
#     contrib/common/conntls_glue.h beside it, and
#     src/Makefile taking conntls's flags from pkg-config for BUILD_TLS=yes (which
#     debian/rules sets), appended to debian/patches/series;
#   - Build-Depends: libconntls-dev;
#   - a changelog entry with the version +conntls1.
# Then `dpkg-buildpackage -us -uc -b` builds it against the installed libconntls-dev.
#
#   contrib/redis/debian-package.sh SOURCE_TREE
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SOURCE_TREE" >&2; exit 2; }
tree=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cd "$tree"
[ -f debian/patches/series ] && [ -f src/tls.c ] || { echo "$tree: not an unpacked redis source package" >&2; exit 1; }
grep -qx conntls.patch debian/patches/series && { echo "$tree: conntls.patch is already there" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a/src" "$work/b/src"
cp src/tls.c src/Makefile "$work/a/src/"
cp "$here/tls.c" "$work/b/src/tls.c"
cp "$here/../common/conntls_glue.h" "$work/b/src/conntls_glue.h"
# BUILD_TLS=yes: conntls's include path, and -lconntls ahead of OpenSSL's libraries
# (hiredis's TLS, in redis-cli and redis-benchmark, stays on OpenSSL).
sed -e 's/^\(\tFINAL_CFLAGS+=-DUSE_OPENSSL .*\)$/\1 $(shell $(PKG_CONFIG) --cflags conntls)/' \
    -e 's/^\(\tFINAL_LIBS += ..\/deps\/hiredis\/libhiredis_ssl.a\) /\1 $(shell $(PKG_CONFIG) --libs conntls) /' \
  src/Makefile > "$work/b/src/Makefile"
[ "$(grep -c 'PKG_CONFIG) --[a-z]* conntls' "$work/b/src/Makefile")" = 2 ] \
  || { echo "src/Makefile: the BUILD_TLS lines to extend were not found" >&2; exit 1; }

{
  cat <<'HDR'
Description: Redis's TLS connection type on conntls
 src/tls.c is replaced by conntls's adapter (contrib/redis/tls.c in conntls): every
 OpenSSL call moves into libconntls. Writes go through conn_tls_writev, so OpenSSL's
 write-retry rule cannot be broken ("SSL routines::bad length" with a small send buffer
 and a reply list that grows between a blocked write and its retry).
Author: conntls
Forwarded: not-needed
HDR
  echo "---"
  for f in src/tls.c src/conntls_glue.h src/Makefile; do (cd "$work" && diff -uN --label "a/$f" --label "b/$f" "a/$f" "b/$f") || true; done
} > debian/patches/conntls.patch
echo conntls.patch >> debian/patches/series

sed -i 's/^Build-Depends:$/Build-Depends:\n libconntls-dev,/' debian/control
grep -q '^ libconntls-dev,$' debian/control || { echo "debian/control: no Build-Depends field to extend" >&2; exit 1; }

version=$(dpkg-parsechangelog -S Version)
distribution=$(dpkg-parsechangelog -S Distribution)
{
  echo "redis (${version}+conntls1) ${distribution}; urgency=medium"
  echo
  echo "  * Build the TLS connection type on conntls (debian/patches/conntls.patch)."
  echo
  echo " -- conntls <conntls@localhost>  $(date -R)"
  echo
  cat debian/changelog
} > "$work/changelog"
cp "$work/changelog" debian/changelog
echo "debian-package: $tree is redis ${version}+conntls1 on conntls"
