# What turns a server's tree into conntls's, in one place for scripts/servers.sh and
# scripts/debian-package.sh (sourced, not run). Keys are servers.sh's server names.
#
# Every conntls tree of Redis and Valkey: contrib/<program>/tls.c in place of src/tls.c,
# contrib/common/conntls_glue.h beside it; of memcached: contrib/memcached/tls.{c,h} in
# place of its own, at the top of the tree. A built-in tree may also carry a patch and the files it needs
# beside it ("from:to-directory", from contrib/): Valkey 8.1's valkey-cli, valkey-benchmark
# and Sentinel on contrib/hiredis's transport; Valkey 9.1's on contrib/libvalkey's, with the
# options stock lacks. (The server alone needs tls.c only: the module trees show it.)
# memcached: every conntls tree carries its version's patch (no clients).
declare -A clients_patch=([valkey-8.1.1]=valkey/valkey-8.1-clients.patch [valkey-9.1]=valkey/valkey-9.1-conntls.patch
  [memcached-1.6.18]=memcached/memcached-1.6.18.patch [memcached-1.6.38]=memcached/memcached-1.6.38.patch)
declare -A clients_files=(
  [valkey-8.1.1]="hiredis/hiredis_conntls.c:deps/hiredis hiredis/hiredis_conntls.h:deps/hiredis common/conntls_client.h:deps/hiredis"
  [valkey-9.1]="libvalkey/valkey_conntls.c:deps/libvalkey/src libvalkey/valkey_conntls.h:deps/libvalkey/include/valkey common/conntls_client.h:deps/libvalkey/src"
)
# The dependency under deps/ a clients patch changes (rebuilt in a derived tree).
declare -A clients_dep=([valkey-8.1.1]=hiredis [valkey-9.1]=libvalkey)

# The files of SERVER's conntls tree, "from:to-directory": the adapter, and with WITH_CLIENTS
# set, what its clients patch needs.
conntls_files() {
  local s=$1 with_clients=${2:-}
  case $s in
    memcached-*) echo "memcached/tls.c:. memcached/tls.h:."; return ;;
  esac
  echo "${s%%-*}/tls.c:src common/conntls_glue.h:src"
  [ -z "$with_clients" ] || echo "${clients_files[$s]:-}"
}
