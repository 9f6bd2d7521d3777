"""deploy_client.py FORM NAME TAG SECONDS USER_TIMEOUT_MS ACKS TRANSPORT HOST PORT CA CERT KEY

c_tests/deploy_client.c's failover modes for redis-py (tests/deployments.rs, seed 004),
FORM cluster: redis-py's RedisCluster on the cluster node HOST:PORT; FORM sentinel: the
primary redis-py's Sentinel finds for the service "mymaster" through the Sentinel at
HOST:PORT. Over conntls (the Python binding's connection class, tcp-user-timeout
USER_TIMEOUT_MS) or over Python's ssl with redis-py's defaults. SETs of 64-byte values to
{TAG}:NAME:i, each acknowledged only once WAIT 1 2000 on the key's primary says a replica
has it (appended to ACKS). Prints "connected" after the first, waits for a line on stdin,
writes on for SECONDS and prints "recovered after S s" at the first write acknowledged
after that line; a failed command is retried with the next key (RedisCluster refreshes its
slot map, Sentinel's pool asks the Sentinel again, by themselves)."""

import sys
import time
from typing import Any, Callable, Dict

import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel, SentinelManagedConnection

import conntls.redis

# A SET and WAIT 1 2000 on the key's primary: whether a replica has it.
Write = Callable[[str, bytes], bool]


def cluster_writer(transport: str, host: str, port: int, tls: Dict[str, Any]) -> Write:
    if transport == "conntls":

        # RedisCluster hands its nodes' connections only the arguments it knows for plain
        # connections: the TLS ones are set here.
        class Connection(conntls.redis.Connection):
            def __init__(self, **kwargs):
                kwargs.update(tls)
                super().__init__(**kwargs)

        cluster = RedisCluster(host=host, port=port, connection_class=Connection)
    else:
        cluster = RedisCluster(host=host, port=port, **tls)

    def write(k: str, v: bytes) -> bool:
        cluster.set(k, v)
        return cluster.execute_command("WAIT", 1, 2000, target_nodes=cluster.get_node_from_key(k)) >= 1

    return write


def sentinel_writer(transport: str, host: str, port: int, tls: Dict[str, Any]) -> Write:
    if transport == "conntls":

        class Connection(SentinelManagedConnection, conntls.redis.Connection):
            pass

        # Sentinel makes a redis.Redis per Sentinel from sentinel_kwargs: its connections
        # come from a pool of the binding's.
        asking = redis.ConnectionPool(connection_class=conntls.redis.Connection, host=host, port=port, **tls)
        primary = Sentinel([(host, port)], sentinel_kwargs={"connection_pool": asking}).master_for(
            "mymaster", connection_class=Connection, **tls)
    else:
        primary = Sentinel([(host, port)], sentinel_kwargs=tls, **tls).master_for("mymaster")

    def write(k: str, v: bytes) -> bool:
        # One client, one thread: the pool hands WAIT the connection that sent the SET.
        primary.set(k, v)
        return primary.execute_command("WAIT", 1, 2000) >= 1

    return write


def main() -> int:
    form, name, tag, seconds, user_timeout, acks_path, transport, host, port, ca, cert, key = sys.argv[1:13]
    tls: Dict[str, Any] = dict(ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key, ssl_check_hostname=False)
    if transport == "conntls":
        tls["conntls_options"] = {"tcp-user-timeout": user_timeout}
    else:
        tls["ssl"] = True
    write = (cluster_writer if form == "cluster" else sentinel_writer)(transport, host, int(port), tls)
    acked = failed = unreplicated = 0
    went = recovered = end = None
    first_error = ""
    with open(acks_path, "a") as acks:
        i = 0
        while went is None or time.monotonic() < end:
            k = f"{{{tag}}}:{name}:{i}"
            v = bytes((ord("a") + (j * 7 + i) % 26) for j in range(64))
            v = k.encode()[:64] + v[len(k.encode()[:64]):]
            try:
                replicated = write(k, v)
            except Exception as e:  # what a failover makes of a command: counted, retried
                failed += 1
                first_error = first_error or f"{type(e).__name__}: {e}"
                time.sleep(0.1)
                i += 1
                continue
            if replicated:
                acks.write(f"{i}\n")
                acks.flush()
                acked += 1
                if went is None:
                    print("connected", flush=True)
                    sys.stdin.readline()
                    went = time.monotonic()
                    end = went + float(seconds)
                elif recovered is None:
                    recovered = time.monotonic() - went
                    print(f"recovered after {recovered:.1f} s", flush=True)
            else:
                unreplicated += 1
            i += 1
    print(f"failover {name} over {transport}: acked {acked}, failed {failed}, not replicated {unreplicated}"
          + (f"; first error: {first_error}" if failed else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
