"""Every bad input gives an exception with the library's message, never a crash; the
log callback bridged to logging under threads and the pool's workers; the handshake
pool; and conntls.cdef checked against the library's exports."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import cffi
import pytest

import conntls
from conftest import ROOT
from conntls import _logging


def test_bad_options_and_files(certs, tmp_path):
    cfg = conntls.Config()
    with pytest.raises(conntls.InvalidArgument, match="unknown option 'no-such-option'"):
        cfg.set("no-such-option", "1")
    with pytest.raises(ValueError, match="session-cache-size"):  # InvalidArgument is a ValueError
        cfg.set("session-cache-size", "-1")
    with pytest.raises(conntls.InvalidArgument, match="'ciphers': value is not UTF-8"):
        cfg.set("ciphers", b"HIGH\xff")
    cfg.close()
    with pytest.raises(conntls.InvalidArgument, match="closed"):
        cfg.set("protocols", "TLSv1.3")
    with pytest.raises(conntls.TLSError, match="nope.crt': missing"):
        conntls.Context({"ca-cert-file": tmp_path / "nope.crt"})
    with pytest.raises(conntls.TLSError, match="not a regular file"):
        conntls.Context({"ca-cert-file": "/dev/zero"})
    # A path that is not UTF-8 is still a path.
    odd = tmp_path / "ca-\udcff.crt"
    odd.write_bytes((certs / "ca.crt").read_bytes())
    assert conntls.Context({"ca-cert-file": odd}).cert_info(conntls.CERT_CA).count == 1


def test_bad_sockets_and_calls(certs):
    ctx = conntls.Context({"ca-cert-file": certs / "ca.crt"})
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(conntls.InvalidArgument, match="not a stream socket"):
        ctx.client(udp, "localhost")
    udp.close()
    with pytest.raises(conntls.InvalidArgument, match="client connections only"):
        a, b = socket.socketpair()
        try:
            ctx.server(a)
        finally:
            a.close()
            b.close()
    a, b = socket.socketpair()
    conn = ctx.client(a, "localhost")
    with pytest.raises(conntls.InvalidArgument, match="len is 0"):
        conn.read(0)
    with pytest.raises(TypeError):
        conn.writev(["not bytes"])
    b.sendall(b"garbage, not a server hello\r\n" * 10)
    with pytest.raises(conntls.TLSError) as fatal:
        conn.do_handshake(5)
    assert fatal.value.message and fatal.value.status == -1
    with pytest.raises(conntls.TLSError) as again:  # sticky
        conn.read(10)
    assert again.value.message == fatal.value.message
    conn.close()
    with pytest.raises(conntls.InvalidArgument, match="closed"):
        conn.read(10)
    a.close()
    b.close()
    with pytest.raises(conntls.InvalidArgument, match="at least 1"):
        conntls.Pool(0, 1, 1)
    with pytest.raises(ValueError, match="unknown certificate kind"):
        ctx.cert_info(7)


class Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.native_threads: set[int] = set()
        self.counting = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.counting:
            self.count += 1
            self.native_threads.add(threading.get_native_id())


def test_log_bridge_and_swaps_under_threads(certs):
    """Threads and the pool's worker log while the callback is removed and put back
    over and over: messages arrive from the workers too, and nothing crashes."""
    handler = Counting()
    logger = logging.getLogger("conntls")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    srv = conntls.Context({"cert-file": certs / "server.crt", "key-file": certs / "server.key", "auth-clients": "no"})
    stop = threading.Event()

    def failing_calls():
        while not stop.is_set():
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with pytest.raises(conntls.InvalidArgument):
                srv.server(udp)  # logged as a warning
            udp.close()

    def pool_handshakes(pool):
        while not stop.is_set():
            a, b = socket.socketpair()
            b.sendall(b"not a client hello\r\n")
            pool.submit(srv.server(a), tag="garbage")
            while (done := pool.collect()) is None:
                threading.Event().wait(0.001)
            conn, tag, failure = done
            assert tag == "garbage" and isinstance(failure, conntls.TLSError)
            conn.close()
            a.close()
            b.close()

    with conntls.Pool(1, 8, 5000) as pool:
        threads = [threading.Thread(target=failing_calls) for _ in range(3)] + [threading.Thread(target=pool_handshakes, args=(pool,))]
        for t in threads:
            t.start()
        for _ in range(200):
            _logging.uninstall()
            _logging.reinstall()
        threading.Event().wait(0.3)
        stop.set()
        for t in threads:
            t.join(20)
    logger.removeHandler(handler)
    python_threads = {t.native_id for t in threads} | {threading.get_native_id()}
    assert handler.count > 50
    assert handler.native_threads - python_threads, "no message came from the pool's own thread"


def test_pool_busy_and_handshakes(certs):
    srv = conntls.Context({"cert-file": certs / "server.crt", "key-file": certs / "server.key", "auth-clients": "no"})
    cli = conntls.Context({"ca-cert-file": certs / "ca.crt"})
    with conntls.Pool(1, 1, 5000) as pool:
        a, b = socket.socketpair()
        c, d = socket.socketpair()
        first = srv.server(a)
        pool.submit(first, tag=1)
        with pytest.raises(conntls.Busy, match="max_inflight"):
            pool.submit(srv.server(c), tag=2)
        with pytest.raises(conntls.InvalidArgument, match="inside a handshake pool"):
            first.read(1)
        client = cli.client(b, "localhost")
        client.do_handshake(10)
        while (done := pool.collect()) is None:
            threading.Event().wait(0.001)
        conn, tag, failure = done
        assert conn is first and tag == 1 and failure is None
        client.sendall(b"hi", timeout=5)
        assert conn.recv(timeout=5) == b"hi"
        for s in (a, b, c, d):
            s.close()


def test_cdef_matches_the_exports():
    """The declarations binding generators read (include/conntls.cdef) parse in cffi as
    they are, and declare exactly the library's exported functions."""
    ffi = cffi.FFI()
    ffi.cdef((ROOT / "include/conntls.cdef").read_text())
    lib = ffi.dlopen(str(Path(conntls._native._path or ROOT / "target/release/libconntls.so.0")))
    declared = sorted(n for n in dir(lib) if n.startswith("conn_tls_"))
    exported = (ROOT / "tests/exported-symbols.txt").read_text().split()
    assert declared == exported
    assert lib.CONN_TLS_WANT_READ == -2 and lib.CONN_TLS_BUSY == -5 and lib.CONN_TLS_CERT_CA == 2
    # The package ships the same declarations.
    assert (Path(conntls.__file__).parent / "conntls.cdef").read_text() == (ROOT / "include/conntls.cdef").read_text()
