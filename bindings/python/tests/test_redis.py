"""redis-py on conntls: SET/GET of 1 MiB values against the example RESP server and
Debian's redis-server --tls; and a black hole (network namespaces, where they can be
made): redis-py over conntls raises within its user timeout, redis-py over Python's ssl
is still waiting at 10 s."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import conntls.redis
from conftest import stop

MIB = os.urandom(1 << 20)


def round_trips(client: redis.Redis) -> None:
    for i in range(3):
        assert client.set(f"big-{i}", MIB) is True
    for i in range(3):
        assert client.get(f"big-{i}") == MIB
    pipe = client.pipeline(transaction=False)  # the example server has no MULTI
    for i in range(20):
        pipe.set(f"k{i}", str(i))
    pipe.get("k19")
    assert pipe.execute()[-1] == b"19"


def test_redis_py_against_resp_server(certs, resp_server):
    # The example server speaks RESP2 only (redis-py 8 asks for RESP3 by default).
    client = conntls.redis.Redis(host="127.0.0.1", port=resp_server, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False,
                                 protocol=2)
    round_trips(client)
    client.close()


def test_redis_py_against_redis_server(certs, redis_server_tls):
    client = conntls.redis.Redis(host="localhost", port=redis_server_tls, ssl_ca_certs=str(certs / "ca.crt"))
    round_trips(client)
    assert client.ping() is True
    # The same through a pool of one's own, by connection_class.
    pool = redis.ConnectionPool(connection_class=conntls.redis.Connection, host="localhost", port=redis_server_tls,
                                ssl_ca_certs=str(certs / "ca.crt"))
    assert redis.Redis(connection_pool=pool).get("big-0") == MIB
    pool.disconnect()
    client.close()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def can_make_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("redis-server") is None:
        return False
    probe = f"conntls-py-probe-{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    ip("netns", "del", probe)
    return True


@pytest.fixture
def namespaces():
    if not can_make_namespaces():
        print("SKIPPED black hole: cannot create network namespaces here (needs root, ip netns, redis-server)")
        pytest.skip("needs root, network namespaces and redis-server")
    pid = os.getpid()
    srv, cli, sdev, cdev = f"conntls-pys{pid}", f"conntls-pyc{pid}", f"cpys{pid}", f"cpyc{pid}"
    try:
        ip("netns", "add", srv)
        ip("netns", "add", cli)
        ip("link", "add", sdev, "netns", srv, "type", "veth", "peer", "name", cdev, "netns", cli)
        for ns, dev, addr in [(srv, sdev, "10.213.78.1/30"), (cli, cdev, "10.213.78.2/30")]:
            ip("-n", ns, "addr", "add", addr, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield srv, cli, sdev
    finally:
        subprocess.run(["ip", "netns", "del", srv], capture_output=True)
        subprocess.run(["ip", "netns", "del", cli], capture_output=True)


def test_black_hole_redis_py_over_conntls_and_over_ssl(certs, namespaces, tmp_path):
    srv, cli, sdev = namespaces
    server = subprocess.Popen(
        ["ip", "netns", "exec", srv, "redis-server", "--port", "0", "--tls-port", "6390", "--bind", "10.213.78.1",
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--protected-mode", "no", "--dir", str(tmp_path)],  # a namespace of the test's own
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        client = subprocess.Popen(
            ["ip", "netns", "exec", cli, sys.executable, str(Path(__file__).with_name("blackhole_client.py")), "10.213.78.1",
             "6390", str(certs / "ca.crt"), "3000"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            line = client.stdout.readline().strip()
            assert line == "connected", client.stderr.read() if client.poll() is not None else line
            ip("-n", srv, "link", "set", sdev, "down")
            client.stdin.write("go\n")
            client.stdin.flush()
            report = json.loads(client.stdout.readline())
        finally:
            stop(client)
    finally:
        stop(server)
    print(f"black hole: {report}")
    conntls_error, conntls_after = report["conntls"]
    assert "ConnectionError" in conntls_error or "TimeoutError" in conntls_error, conntls_error
    assert 2.0 <= conntls_after <= 3.0 + 1.5, report
    assert report["ssl_still_waiting_at"] >= 10, report
