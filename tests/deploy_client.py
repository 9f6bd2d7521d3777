"""deploy_client.py NAME TAG SECONDS USER_TIMEOUT_MS ACKS TRANSPORT HOST PORT CA CERT KEY

c_tests/deploy_client.c's failover mode for redis-py (tests/deployments.rs, seed 004):
redis-py's RedisCluster on the cluster node HOST:PORT, over conntls (the Python binding's
connection class, tcp-user-timeout USER_TIMEOUT_MS) or over Python's ssl with redis-py's
defaults. SETs of 64-byte values to {TAG}:NAME:i, each acknowledged only once WAIT 1 2000
on the key's primary says a replica has it (appended to ACKS). Prints "connected" after the
first, waits for a line on stdin, writes on for SECONDS and prints "recovered after S s" at
the first write acknowledged after that line; a failed command is retried with the next
key (RedisCluster refreshes its slot map itself)."""

import sys
import time

from redis.cluster import RedisCluster

import conntls.redis


def main() -> int:
    name, tag, seconds, user_timeout, acks_path, transport, host, port, ca, cert, key = sys.argv[1:12]
    if transport == "conntls":

        # RedisCluster hands its nodes' connections only the arguments it knows for plain
        # connections: the TLS ones are set here.
        class Connection(conntls.redis.Connection):
            def __init__(self, **kwargs):
                kwargs.update(ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key, ssl_check_hostname=False,
                              conntls_options={"tcp-user-timeout": user_timeout})
                super().__init__(**kwargs)

        cluster = RedisCluster(host=host, port=int(port), connection_class=Connection)
    else:
        cluster = RedisCluster(host=host, port=int(port), ssl=True, ssl_ca_certs=ca, ssl_certfile=cert,
                               ssl_keyfile=key, ssl_check_hostname=False)
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
                cluster.set(k, v)
                node = cluster.get_node_from_key(k)
                replicated = cluster.execute_command("WAIT", 1, 2000, target_nodes=node) >= 1
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
