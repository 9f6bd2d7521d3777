#!/usr/bin/env bash
# Fetches one Debian source package, by name and exact version, into DIR with apt's own
# signature checks, using an apt configuration of this project's (deb-src lines for
# bookworm, bookworm-security, trixie and trixie-security under target/debian-apt), never the
# machine's. Prints each file fetched with its sha256. Fails, naming the package and apt's
# error, when anything is missing: never a silent skip.
#
#   scripts/debian-source.sh NAME VERSION DIR [--tar-only]
#
# --tar-only: only the upstream tarball(s) (trixie's pool lacks some .dsc/.debian.tar files);
# DIR then holds the tarball, unpacked by the caller. Without it apt unpacks the package
# (upstream tree with Debian's patches applied) into DIR/NAME-<upstream version>.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 NAME VERSION DIR [--tar-only]" >&2; exit 2; }
name=$1 version=$2 dir=$3 tar_only=${4:-}
top=$(cd "$(dirname "$0")/.." && pwd)
apt_dir=$top/target/debian-apt
mkdir -p "$apt_dir/lists/partial" "$dir"

cat > "$apt_dir/sources.list" <<LIST
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian trixie main
deb-src http://deb.debian.org/debian-security trixie-security main
LIST
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
          -o "Dir::State::Lists=$apt_dir/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
          -o APT::Sandbox::User=root -o Acquire::Retries=3)

# One index fetch per hour is enough: the pinned versions do not move.
stamp=$apt_dir/updated
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
  apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 \
    || { echo "debian-source: apt-get update failed for $name:" >&2; cat "$apt_dir/update.log" >&2; exit 1; }
  touch "$stamp"
fi

args=(source --download-only)
[ "$tar_only" = --tar-only ] && args+=(--tar-only)
log=$dir/apt-source.log
if ! (cd "$dir" && apt-get "${apt_opts[@]}" "${args[@]}" "$name=$version") >"$log" 2>&1; then
  echo "debian-source: could not fetch $name $version:" >&2
  cat "$log" >&2
  exit 1
fi
echo "debian-source: $name $version into $dir"
(cd "$dir" && find . -maxdepth 1 -type f ! -name apt-source.log -printf '%f\n' | sort | xargs -r sha256sum)
if [ "$tar_only" != --tar-only ]; then
  dsc=$(ls "$dir"/*.dsc | head -n 1)
  (cd "$dir" && dpkg-source -x --no-check "$(basename "$dsc")" >/dev/null)
fi
