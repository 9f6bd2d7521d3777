#!/usr/bin/env bash
# Fetches one Debian source package, by name and version, into DIR with apt's own
# signature checks, using an apt configuration of this project's (deb-src lines for
# bookworm, bookworm-security, trixie, trixie-security, forky (testing) and unstable under
# target/debian-apt, at the archives the machine's own apt sources name), never editing the
# machine's. Prints the exact version and each file fetched with its sha256. Fails, naming
# the package and apt's error, when anything is missing: never a silent skip.
#
#   scripts/debian-source.sh NAME VERSION DIR [--tar-only]
#
# VERSION is exact (7.0.15-1~deb12u6), or an upstream line ending in .x (9.1.x): the newest
# version of that line any suite serves. Testing and unstable replace a version at their
# next upload and keep no old ones, so a line is what a build from them can name.
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

# The archives' addresses come from the machine's own apt sources (deb822 stanzas in
# sources.list.d/*.sources, one-line entries in sources.list): a source whose suites end in
# -security gives the security archive, any other Debian suite the main one. No address is
# written here.
archives=$(
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo; } | awk '
    /^[Uu][Rr][Ii][Ss]:/ { uris = $2 } /^[Ss]uites:/ { suites = $0 }
    /^[ \t]*$/ { if (uris != "") print (suites ~ /-security/ ? "security " : "main ") uris; uris = ""; suites = "" }'
  { grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list 2>/dev/null || true; } | sed 's/\[[^]]*\]//' |
    awk '{ print ($3 ~ /-security$/ ? "security " : "main ") $2 }'
)
main_uri=$(awk '$1 == "main" { print $2; exit }' <<<"$archives")
security_uri=$(awk '$1 == "security" { print $2; exit }' <<<"$archives")
if [ -z "$main_uri" ] || [ -z "$security_uri" ]; then
  echo "debian-source: no Debian archive and security archive in this machine's apt sources" \
       "(/etc/apt/sources.list.d/*.sources URIs, or deb lines in /etc/apt/sources.list): cannot fetch $name" >&2
  exit 1
fi
cat > "$apt_dir/sources.list" <<LIST
deb-src $main_uri bookworm main
deb-src $security_uri bookworm-security main
deb-src $main_uri trixie main
deb-src $security_uri trixie-security main
deb-src $main_uri forky main
deb-src $main_uri unstable main
LIST
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
          -o "Dir::State::Lists=$apt_dir/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
          -o APT::Sandbox::User=root -o Acquire::Retries=3)

# One index fetch per hour is enough: stable's versions do not move, and a line's newest
# moves at most once a day.
stamp=$apt_dir/updated
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
  apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 \
    || { echo "debian-source: apt-get update failed for $name:" >&2; cat "$apt_dir/update.log" >&2; exit 1; }
  touch "$stamp"
fi

if [[ $version == *.x ]]; then
  line=${version%x}
  newest=""
  for v in $(apt-cache "${apt_opts[@]}" showsrc "$name" 2>/dev/null | sed -n 's/^Version: //p'); do
    upstream=${v#*:}; upstream=${upstream%-*}
    [[ $upstream == "$line"* ]] || continue
    if [ -z "$newest" ] || dpkg --compare-versions "$v" gt "$newest"; then newest=$v; fi
  done
  if [ -z "$newest" ]; then
    echo "debian-source: no $name $version is served by bookworm, trixie, forky or unstable" \
         "(versions served: $(apt-cache "${apt_opts[@]}" showsrc "$name" 2>/dev/null | sed -n 's/^Version: //p' | sort -u | tr '\n' ' '))" >&2
    exit 1
  fi
  version=$newest
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
