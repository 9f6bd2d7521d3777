"""Handshakes and data against real peers: openssl s_server / s_client, the example RESP
server, redis-cli; writev through a 4 KiB send buffer; a reload while connections run."""

from __future__ import annotations

import os
import sys
import random
import select
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

import conntls
from conftest import free_port


def client_ctx(certs: Path, **extra) -> conntls.Context:
    return conntls.Context({"ca-cert-file": certs / "ca.crt", **extra})


def server_ctx(certs: Path, cert: str = "server") -> conntls.Context:
    return conntls.Context({"cert-file": certs / f"{cert}.crt", "key-file": certs / f"{cert}.key", "auth-clients": "no"})


def test_client_against_s_server(certs, s_server):
    sock = socket.create_connection(("127.0.0.1", s_server))
    with conntls.wrap(sock, client_ctx(certs), server_hostname="localhost", timeout=10) as tls:
        assert tls.protocol == "TLSv1.3" and tls.cipher and tls.group
        assert tls.peer_cert_field("CN") == "server"
        assert tls.peer_cert_san("DNS") == [b"localhost"] and tls.peer_cert_san("uri") == []
        with pytest.raises(conntls.InvalidArgument):
            tls.peer_cert_san("X400")
        assert "BEGIN CERTIFICATE" in tls.peer_cert_pem()
        tls.sendall(b"hello conntls\n", timeout=10)
        got = b""
        while not got.endswith(b"\n"):
            got += tls.recv(timeout=10)
        assert got == b"hello conntls\n"[-2::-1] + b"\n"
    sock.close()


def test_client_refuses_the_wrong_host(certs, s_server):
    sock = socket.create_connection(("127.0.0.1", s_server))
    with pytest.raises(conntls.TLSError, match="verify failed"):
        conntls.wrap(sock, client_ctx(certs), server_hostname="not-localhost.example", timeout=10)
    sock.close()


def test_server_with_s_client(certs):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ctx = server_ctx(certs)
    seen = {}

    def serve():
        sock, _ = listener.accept()
        with conntls.wrap(sock, ctx, server_side=True, timeout=10) as tls:
            seen["line"] = tls.recv(timeout=10)
            tls.sendall(b"pong\n", timeout=10)
            tls.shutdown()
        sock.close()

    t = threading.Thread(target=serve)
    t.start()
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certs / "ca.crt"), "-verify_return_error", "-quiet"],
        input=b"ping\n", capture_output=True, timeout=20,
    )
    t.join(10)
    assert seen["line"] == b"ping\n"
    assert b"pong" in out.stdout
    listener.close()


def resp(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def test_resp_round_trip_with_resp_server(certs, resp_server):
    sock = socket.create_connection(("127.0.0.1", resp_server))
    with conntls.wrap(sock, client_ctx(certs), server_hostname="localhost", timeout=10) as tls:
        tls.sendall(resp(b"SET", b"py-key", b"py-value") + resp(b"GET", b"py-key"), timeout=10)
        got = b""
        while got.count(b"\r\n") < 3:
            got += tls.recv(timeout=10)
        assert got == b"+OK\r\n$8\r\npy-value\r\n"
    sock.close()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed (Debian: redis-tools)")
def test_redis_cli_against_a_python_server(certs):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ctx = server_ctx(certs)

    def serve():
        sock, _ = listener.accept()
        with conntls.wrap(sock, ctx, server_side=True, timeout=10) as tls:
            request = b""
            while b"PING" not in request.upper():
                chunk = tls.recv(timeout=10)
                if not chunk:
                    break
                request += chunk
            tls.sendall(b"+PONG\r\n", timeout=10)
            tls.recv(timeout=10)  # redis-cli closes
        sock.close()

    t = threading.Thread(target=serve)
    t.start()
    out = subprocess.run(["redis-cli", "--tls", "--cacert", str(certs / "ca.crt"), "-h", "127.0.0.1", "-p", str(port), "PING"],
                         capture_output=True, text=True, timeout=20)
    t.join(10)
    assert out.stdout.strip() == "PONG", out.stderr
    listener.close()


def test_writev_through_a_4k_send_buffer(certs):
    """Pieces of every kind and size through a 4 KiB send buffer: after each partial
    commit the next call passes something else (what is left, re-sliced), and every byte
    arrives in order."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server, client = server_ctx(certs).server(b), client_ctx(certs).client(a, "localhost")
    for _ in range(200):
        for side in (client, server):
            try:
                side.handshake()
            except conntls.WantIO:
                pass
    client.do_handshake(5)
    server.do_handshake(5)
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(3 << 20))
    sent = received = 0
    got = bytearray()
    while received < len(data):
        if sent < len(data):
            pieces, at = [], sent
            for _ in range(rng.randint(1, 40)):
                size = rng.choice([1, 17, 100, 4096, 16384, 70000])
                chunk = data[at:at + size]
                at += len(chunk)
                pieces.append(rng.choice([bytes, bytearray, memoryview])(chunk))
            try:
                sent += client.writev(pieces)
            except conntls.WantWrite:
                pass
        try:
            client.flush()
        except conntls.WantWrite:
            pass
        try:
            while True:
                chunk = server.read(65536)
                got += chunk
                received += len(chunk)
        except conntls.WantRead:
            select.select([b], [], [], 0.01)
    assert bytes(got) == data
    client.close()
    server.close()
    a.close()
    b.close()


def test_reload_while_connections_run(certs):
    """Clients handshake in threads while the server's context flips between two
    certificates; every handshake verifies, both certificates are seen, and a reload
    that cannot build changes nothing."""
    ctx = server_ctx(certs)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    serials, errors = set(), []

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except socket.timeout:
                continue
            try:
                with conntls.wrap(sock, ctx, server_side=True, timeout=10) as tls:
                    tls.sendall(b"%d" % tls.generation, timeout=10)
            except conntls.Error as e:
                errors.append(str(e))
            sock.close()

    def connect(count):
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            with conntls.wrap(sock, client_ctx(certs), server_hostname="localhost", timeout=10) as tls:
                serials.add(tls.peer_cert_pem())
                assert int(tls.recv(timeout=10)) >= 1
            sock.close()

    server = threading.Thread(target=serve)
    server.start()
    clients = [threading.Thread(target=connect, args=(25,)) for _ in range(3)]
    for c in clients:
        c.start()
    for i in range(30):
        name = "server2" if i % 2 == 0 else "server"
        ctx.reload({"cert-file": certs / f"{name}.crt", "key-file": certs / f"{name}.key", "auth-clients": "no"})
    generation = ctx.generation
    with pytest.raises(conntls.TLSError, match="missing"):
        ctx.reload({"cert-file": certs / "nope.crt", "key-file": certs / "server.key", "auth-clients": "no"})
    assert ctx.generation == generation == 31
    for c in clients:
        c.join(60)
    stop.set()
    server.join(10)
    listener.close()
    assert not errors
    assert len(serials) == 2


def test_asyncio_example_runs(certs, resp_server):
    example = Path(__file__).resolve().parents[1] / "examples/asyncio_client.py"
    out = subprocess.run([sys.executable, str(example), "127.0.0.1", str(resp_server), str(certs / "ca.crt")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "PONG" in out.stdout and "10 clients" in out.stdout


def test_readme_python_example(certs, s_server, tmp_path):
    """README.md's Python example, as it is, against s_server -rev."""
    readme = (Path(os.environ.get("CONNTLS_ROOT", Path(__file__).resolve().parents[3])) / "README.md").read_text()
    block = readme.split("<!-- readme example: example.py -->", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(block + "\n")
    out = subprocess.run([sys.executable, str(script), str(s_server), str(certs / "ca.crt")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("TLSv1.3 ") and "SLT revo olleh" in out.stdout
