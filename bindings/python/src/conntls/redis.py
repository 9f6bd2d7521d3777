"""redis-py over conntls: a Connection class for redis-py's pools.

One line of set-up changes::

    r = redis.Redis(host="db", port=6380, ssl=True, ssl_ca_certs="ca.crt")    # before
    r = conntls.redis.Redis(host="db", port=6380, ssl_ca_certs="ca.crt")      # after

or, keeping your own pool: ``redis.ConnectionPool(connection_class=conntls.redis.Connection,
...)``. The ssl_* arguments keep their redis-py meaning (ssl_ca_certs, ssl_ca_path,
ssl_certfile, ssl_keyfile, ssl_password, ssl_check_hostname, ssl_ciphers); conntls_options
takes any further conntls option ("tcp-user-timeout", "groups"...).

What changes: writes go through conn_tls_writev (the write guarantee), and the client
gets conntls's dead-peer defaults: TCP_USER_TIMEOUT 30 s and keepalive after 15 s idle,
in place of redis-py's keepalive options. Over Python's ssl, redis-py sets keepalive but
no user timeout, so a command sent into a black hole waits for the kernel's ~15 minutes
of retransmits; here it fails with ConnectionError after the user timeout."""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import redis as redis_py

from .connection import Connection as TLSConnection, wrap
from .context import Context
from .errors import Error, TLSError, WantRead, WantWrite

_contexts: Dict[Tuple[Any, ...], Context] = {}
_contexts_lock = threading.Lock()


def context_for(options: Mapping[str, Any]) -> Context:
    """One shared Context per set of options, so connections resume sessions."""
    key = tuple(sorted((k, str(v)) for k, v in options.items()))
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = _contexts[key] = Context(dict(options))
        return ctx


class TLSSocket:
    """The socket interface redis-py's parsers use (recv, recv_into, sendall, pending,
    settimeout...), over a conntls Connection. Timeouts follow socket's rules: None
    blocks, 0 raises BlockingIOError, t > 0 raises socket.timeout after t seconds."""

    def __init__(self, conn: TLSConnection, timeout: Optional[float]) -> None:
        self._conn = conn
        self._timeout = timeout

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def _call(self, step: Any) -> Any:
        try:
            if self._timeout == 0:
                try:
                    return step()
                except (WantRead, WantWrite) as want:
                    raise BlockingIOError(errno.EWOULDBLOCK, str(want) or "would block") from want
            return self._conn._blocking(step, self._timeout)
        except TimeoutError as e:
            raise socket.timeout("timed out") from e
        except TLSError as e:
            # redis-py turns OSError into its ConnectionError.
            raise OSError(errno.ECONNRESET, f"conntls: {e.message}") from e

    def recv(self, size: int) -> bytes:
        return self._call(lambda: self._conn.read(size))

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        return self._call(lambda: self._conn.read_into(buffer, nbytes))

    def sendall(self, data: Any) -> None:
        deadline = None if not self._timeout else time.monotonic() + self._timeout
        view = memoryview(data)
        while len(view):
            n = self._call(lambda: self._conn.write(view))
            view = view[n:]
        while self._conn.pending_write:
            if deadline is not None and time.monotonic() > deadline:
                raise socket.timeout("timed out")
            self._call(self._conn.flush)

    def send(self, data: Any) -> int:
        return self._call(lambda: self._conn.write(data))

    def pending(self) -> int:
        return self._conn.pending_read

    def fileno(self) -> int:
        return self._conn.fileno()

    def getsockname(self) -> Any:
        return self._conn.socket.getsockname()

    def getpeername(self) -> Any:
        return self._conn.socket.getpeername()

    def setsockopt(self, *args: Any) -> None:
        self._conn.socket.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        try:
            self._conn.shutdown()
        except Error:
            pass
        self._conn.socket.shutdown(how)

    def close(self) -> None:
        self._conn.close()
        self._conn.socket.close()


class Connection(redis_py.connection.Connection):
    """redis-py's TCP Connection, put on conntls once connected."""

    def __init__(
        self,
        ssl_ca_certs: Optional[str] = None,
        ssl_ca_path: Optional[str] = None,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        ssl_password: Optional[str] = None,
        ssl_check_hostname: bool = True,
        ssl_ciphers: Optional[str] = None,
        conntls_options: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        options: Dict[str, Any] = {}
        for name, value in [("ca-cert-file", ssl_ca_certs), ("ca-cert-dir", ssl_ca_path), ("client-cert-file", ssl_certfile),
                            ("client-key-file", ssl_keyfile), ("client-key-file-pass", ssl_password), ("ciphers", ssl_ciphers)]:
            if value is not None:
                options[name] = value
        options.update(conntls_options or {})
        self.conntls_options = options
        self.check_hostname = ssl_check_hostname
        super().__init__(**kwargs)

    def _connect(self) -> Any:
        sock = super()._connect()
        try:
            name = self.host if self.check_hostname else None
            conn = wrap(sock, context_for(self.conntls_options), server_hostname=name, timeout=self.socket_connect_timeout)
        except (OSError, Error) as e:
            sock.close()
            raise redis_py.exceptions.ConnectionError(f"conntls: {e}") from e
        return TLSSocket(conn, self.socket_timeout)


def Redis(**kwargs: Any) -> redis_py.Redis:
    """redis.Redis on conntls: takes redis.Redis's connection arguments (host, port, db,
    password, socket_timeout, decode_responses...), its ssl_* arguments, and
    conntls_options."""
    kwargs.pop("ssl", None)
    return redis_py.Redis(connection_pool=redis_py.ConnectionPool(connection_class=Connection, **kwargs))
