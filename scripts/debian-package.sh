#!/usr/bin/env bash
# Turns an unpacked Debian source package of a server into one that builds on conntls, the
# way a distribution would carry it. Made for, and tested with (tests/debian_package.rs):
#   redis 5:7.0.15-1~deb12u10 (Debian 12), valkey 9.1.x (Debian unstable, 9.1.2-1 today)
#   and memcached 1.6.18-1+deb12u1 (Debian 12),
# unpacked with their patches applied, as `apt-get source` or `dpkg-source -x` leave them.
# It adds:
#   - debian/patches/conntls.patch (DEP-3), at the end of debian/patches/series: the
#     conntls tree's files (scripts/conntls-trees.sh: src/tls.c replaced by the adapter,
#     src/conntls_glue.h beside it; for Valkey 9.1, valkey-9.1-conntls.patch and the client
#     transport it needs; for memcached, tls.c and tls.h and memcached-1.6.18.patch), and
#     the build taking conntls's flags from pkg-config: src/Makefile for BUILD_TLS=yes
#     (which Redis's and Valkey's debian/rules set), configure.ac's OpenSSL check for
#     memcached (its --enable-tls; dh_autoreconf regenerates configure);
#   - Build-Depends: libconntls-dev;
#   - a changelog entry with the version +conntls1.
# Then `dpkg-buildpackage -us -uc -b` builds it against the installed libconntls-dev.
#
#   scripts/debian-package.sh SOURCE_TREE
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SOURCE_TREE" >&2; exit 2; }
tree=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/scripts/conntls-trees.sh"
cd "$tree"
[ -f debian/patches/series ] && [ -f debian/changelog ] && { [ -f src/tls.c ] || [ -f tls.c ]; } \
  || { echo "$tree: not an unpacked server source package (debian/patches/series, tls.c)" >&2; exit 1; }
grep -qx conntls.patch debian/patches/series && { echo "$tree: conntls.patch is already there" >&2; exit 1; }

name=$(dpkg-parsechangelog -S Source)
version=$(dpkg-parsechangelog -S Version)
distribution=$(dpkg-parsechangelog -S Distribution)
upstream=$(echo "$version" | sed 's/^[0-9]*://; s/[-+~].*//') # 5:7.0.15-1~deb12u10 -> 7.0.15
case "$name-$upstream" in
  redis-7.0.15) server=redis-7.0.15 ;;
  valkey-9.1.*) server=valkey-9.1 ;;
  memcached-1.6.18) server=memcached-1.6.18 ;;
  *) echo "$tree: $name $version: no conntls package recipe (redis 7.0.15, valkey 9.1.x, memcached 1.6.18)" >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$tree" "$work/b"
rm -rf "$work/b/debian" "$work/b/.pc"
changed=()
for f in $(conntls_files "$server" with-clients); do
  from=$top/contrib/${f%:*} to=${f#*:}/$(basename "${f%:*}")
  to=${to#./}
  cp "$from" "$work/b/$to"
  changed+=("$to")
done
if [ -n "${clients_patch[$server]:-}" ]; then
  patch=$top/contrib/${clients_patch[$server]}
  patch -d "$work/b" -p1 -s -f --no-backup-if-mismatch <"$patch"
  changed+=($(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$patch"))
fi
program=${server%%-*}
if [ "$program" = memcached ]; then
  # --enable-tls: conntls's flags with OpenSSL's (memcached's testapp is an OpenSSL client).
  sed -i 's/^  PKG_CHECK_MODULES(OPENSSL, openssl, /  PKG_CHECK_MODULES(OPENSSL, [conntls openssl], /' "$work/b/configure.ac"
  grep -q 'PKG_CHECK_MODULES(OPENSSL, \[conntls openssl\]' "$work/b/configure.ac" \
    || { echo "configure.ac: the OpenSSL check to extend was not found" >&2; exit 1; }
  changed+=(configure.ac)
else
  # BUILD_TLS=yes: conntls's include path, and -lconntls ahead of OpenSSL's libraries (the
  # clients' OpenSSL transport stays linked: Redis's hiredis keeps it, Valkey 9.1's
  # --insecure uses it).
  sed -i -e 's/^\(\tFINAL_CFLAGS+=-DUSE_OPENSSL\(=$(BUILD_YES)\)\? .*\)$/\1 $(shell $(PKG_CONFIG) --cflags conntls)/' \
         -e 's/^\(\tFINAL_LIBS += ..\/deps\/[^ ]*\.a\) \$(LIBSSL_LIBS)/\1 $(shell $(PKG_CONFIG) --libs conntls) $(LIBSSL_LIBS)/' \
    "$work/b/src/Makefile"
  [ "$(grep -c 'PKG_CONFIG) --[a-z]* conntls' "$work/b/src/Makefile")" = 2 ] \
    || { echo "src/Makefile: the BUILD_TLS=yes lines to extend were not found" >&2; exit 1; }
  changed+=(src/Makefile)
fi

{
  if [ "$program" = memcached ]; then
    cat <<HDR
Description: memcached's TLS on conntls
 tls.c and tls.h are replaced by conntls's adapter (contrib/memcached in conntls), and
 memcached.c calls its TLS through that interface (memcached 1.6.38's, backported): every
 OpenSSL call moves into libconntls. Handshakes run on conntls's handshake pool, not in
 the acceptor; responses go to conn_tls_writev uncopied; refresh_certs swaps a new
 generation in, the CA included; a request left decrypted inside a TLS record is read
 before the connection waits on its fd (stock waits for the client's next bytes).
 configure takes conntls's flags (and OpenSSL's, for testapp) from pkg-config.
HDR
  else
    cat <<HDR
Description: ${program^}'s TLS on conntls
 src/tls.c is replaced by conntls's adapter (contrib/$program/tls.c in conntls): every
 OpenSSL call of the connection type moves into libconntls. Writes go through
 conn_tls_writev, so OpenSSL's write-retry rule cannot be broken ("SSL routines::bad
 length" with a small send buffer and a reply list that grows between a blocked write and
 its retry).
HDR
    if [ -n "${clients_patch[$server]:-}" ]; then
      echo " With conntls's contrib/${clients_patch[$server]}: the clients (valkey-cli,"
      echo " valkey-benchmark, Sentinel) on conntls's client transport, and the TLS options"
      echo " that patch adds (its README in conntls names them)."
    fi
  fi
  cat <<'HDR'
Author: conntls
Forwarded: not-needed
HDR
  echo "---"
  for f in $(printf '%s\n' "${changed[@]}" | sort -u); do
    diff -uN --label "a/$f" --label "b/$f" "$tree/$f" "$work/b/$f" || true
  done
} > debian/patches/conntls.patch
echo conntls.patch >> debian/patches/series

sed -i 's/^Build-Depends:$/Build-Depends:\n libconntls-dev,/' debian/control
grep -q '^ libconntls-dev,$' debian/control || { echo "debian/control: no Build-Depends field to extend" >&2; exit 1; }

{
  echo "$name (${version}+conntls1) ${distribution}; urgency=medium"
  echo
  echo "  * Build the TLS connection type on conntls (debian/patches/conntls.patch)."
  echo
  echo " -- conntls <conntls@localhost>  $(date -R)"
  echo
  cat debian/changelog
} > "$work/changelog"
cp "$work/changelog" debian/changelog
echo "debian-package: $tree is $name ${version}+conntls1 on conntls"
