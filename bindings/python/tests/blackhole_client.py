"""Run by test_redis.py inside the client's network namespace: connects redis-py over
conntls (TCP_USER_TIMEOUT from argv) and over Python's ssl, says "connected", waits for
a line (the server's link is then down), sends a 256 KiB SET on each and reports, as
JSON, when the conntls one failed and whether the ssl one was still waiting at 10 s.

Both clients have socket_timeout=None, as clients of blocking commands (BLPOP, XREAD)
must: redis-py 8's default of 5 s is an operation timeout, which fails a server that is
merely slow as well; TCP_USER_TIMEOUT fails only a peer that stopped acknowledging."""

import json
import os
import sys
import threading
import time

import redis
from redis.retry import Retry
from redis.backoff import NoBackoff

import conntls.redis

host, port, ca, user_timeout_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
no_retry = Retry(NoBackoff(), 0)  # an error is reported, not retried on a new connection
common = dict(host=host, port=port, ssl_ca_certs=ca, ssl_check_hostname=False, retry=no_retry, socket_timeout=None)
over_conntls = conntls.redis.Redis(**common, conntls_options={"tcp-user-timeout": user_timeout_ms})
over_ssl = redis.Redis(**common, ssl=True)
over_conntls.set("warm", "1")
over_ssl.set("warm", "1")
print("connected", flush=True)
sys.stdin.readline()
results = {}


def send(name, client):
    start = time.monotonic()
    try:
        client.set("big", b"x" * (256 << 10))
        results[name] = ["ok", time.monotonic() - start]
    except Exception as e:  # what redis-py raises is the point
        results[name] = [f"{type(e).__name__}: {e}", time.monotonic() - start]


start = time.monotonic()
threads = {name: threading.Thread(target=send, args=(name, c), daemon=True) for name, c in [("conntls", over_conntls), ("ssl", over_ssl)]}
for t in threads.values():
    t.start()
threads["conntls"].join(15)
threads["ssl"].join(max(0.0, 10.5 - (time.monotonic() - start)))
report = {"conntls": results.get("conntls", ["still waiting", time.monotonic() - start]),
          "ssl_still_waiting_at": time.monotonic() - start if threads["ssl"].is_alive() else results["ssl"][1]}
print(json.dumps(report), flush=True)
os._exit(0)  # the ssl client is still blocked in the kernel's retransmits
