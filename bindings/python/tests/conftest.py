"""Fixtures: certificates, the example RESP server, Debian's redis-server with TLS,
openssl s_server, all on loopback and all started and stopped by PID here.

CONNTLS_ROOT is the repository (default: three levels up); CONNTLS_LIBRARY the library
under test (default: target/release/libconntls.so.0 there)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("CONNTLS_ROOT", Path(__file__).resolve().parents[3]))
os.environ.setdefault("CONNTLS_LIBRARY", str(ROOT / "target/release/libconntls.so.0"))
LIB_DIR = Path(os.environ["CONNTLS_LIBRARY"]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs") / "set"
    subprocess.run([str(ROOT / "scripts/make-certs.sh"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def resp_server(certs: Path, tmp_path_factory: pytest.TempPathFactory):
    """examples/resp_server.c on conntls: yields its TLS port."""
    exe = tmp_path_factory.mktemp("bin") / "resp_server"
    subprocess.run(
        ["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", f"-I{ROOT / 'include'}", str(ROOT / "examples/resp_server.c"), "-o", str(exe),
         f"-L{LIB_DIR}", f"-Wl,-rpath,{LIB_DIR}", "-lconntls", "-lpthread"],
        check=True,
    )
    proc = subprocess.Popen(
        [str(exe), "--tls-port", "0", "--port", "0", "--cert", str(certs / "server.crt"), "--key", str(certs / "server.key"),
         "--ca", str(certs / "ca.crt")],
        stdout=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"},
    )
    ports = [int(p) for p in re.findall(r":(\d+)", proc.stdout.readline())]  # "tls 127.0.0.1:P, plain 127.0.0.1:Q"
    yield ports[0]
    stop(proc)


@pytest.fixture(scope="session")
def redis_server_tls(certs: Path, tmp_path_factory: pytest.TempPathFactory):
    """Debian's redis-server with TLS only: yields its port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: redis-server)")
    port = free_port()
    work = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(certs / "server.crt"),
         "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(work), "--proto-max-bulk-len", "16mb"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc)
    yield port
    stop(proc)


@pytest.fixture
def s_server(certs: Path):
    """openssl s_server -rev (answers each line reversed): yields its port."""
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(certs / "server.crt"), "-key",
         str(certs / "server.key"), "-rev", "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc)
    yield port
    stop(proc)
