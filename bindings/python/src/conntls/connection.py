"""TLS connections (conn_tls) over sockets that stay the caller's.

Non-blocking calls (handshake, read, write, writev, flush, shutdown) raise WantRead /
WantWrite when the socket is not ready: an event loop waits for the fd and calls again.
Blocking helpers (do_handshake, recv, sendall) wait on the fd themselves, with an
optional timeout. A Connection is used by one thread at a time (any thread)."""

from __future__ import annotations

import select
import socket as socket_module
import time
from typing import Any, Iterable, Optional, Union

from . import _native
from ._native import ffi
from .context import Context
from .errors import Error, InvalidArgument, WantRead, WantWrite

Buffer = Union[bytes, bytearray, memoryview]


def _wait(fd: int, want: type, deadline: Optional[float]) -> None:
    """Waits until fd is readable (WantRead) or writable (WantWrite), or the deadline."""
    events = select.POLLIN if want is WantRead else select.POLLOUT
    poller = select.poll()
    poller.register(fd, events)
    while True:
        if deadline is None:
            timeout_ms = None
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("conntls: timed out waiting for the socket")
            timeout_ms = max(1, int(left * 1000))
        if poller.poll(timeout_ms):
            return


class Connection(_native.Owner):
    """One TLS connection. Make it with Context.server / Context.client or wrap().

    The socket is only borrowed: it must be connected; it is made non-blocking; it is
    never closed here (close() frees the TLS state only). The Connection keeps a
    reference to it and to its context."""

    _ptr: Any = None  # until the C object exists: close() and __del__ then do nothing

    def __init__(self, ptr: Any, sock: socket_module.socket, context: Context) -> None:
        self._lib = _native.lib()
        self._ptr = ptr
        self._sock = sock
        self._context = context
        self._in_pool = False

    @classmethod
    def _make(cls, context: Context, sock: socket_module.socket, server_side: bool, server_name: Optional[str]) -> "Connection":
        lib = _native.lib()
        sock.setblocking(False)
        if server_side:
            ptr = lib.conn_tls_new_server(context._handle(), sock.fileno())
        else:
            name = server_name.encode() if server_name is not None else ffi.NULL
            ptr = lib.conn_tls_new_client(context._handle(), sock.fileno(), name)
        if ptr == ffi.NULL:
            raise _native.thread_error()
        return cls(ptr, sock, context)

    # -- plumbing ---------------------------------------------------------------------

    def _handle(self) -> Any:
        if self._in_pool:
            raise InvalidArgument(_native.EINVAL, "the connection is inside a handshake pool")
        if self._ptr is None:
            raise InvalidArgument(_native.EINVAL, "the connection is closed")
        return self._ptr

    def _check(self, r: int) -> int:
        """r if it is not a status below 0, else the matching exception."""
        if r >= 0:
            return r
        message = "" if r in (_native.WANT_READ, _native.WANT_WRITE) else self.last_error
        raise _native.error(r, message)

    def _blocking(self, step: Any, timeout: Optional[float]) -> Any:
        """Repeats a non-blocking step, waiting on the fd as it asks, up to timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return step()
            except (WantRead, WantWrite) as want:
                _wait(self._sock.fileno(), type(want), deadline)

    # -- non-blocking -----------------------------------------------------------------

    def handshake(self) -> None:
        """One handshake step; returns when the handshake is done (raises WantRead /
        WantWrite before, TLSError when it fails)."""
        self._check(self._lib.conn_tls_handshake(self._handle()))

    def read(self, size: int = 65536) -> bytes:
        """Up to size decrypted bytes; b"" when the peer closed the stream. Raises
        WantRead/WantWrite when nothing is there yet. While pending_read > 0, more
        bytes wait: read again without waiting for the socket."""
        buf = ffi.new("char[]", size)
        n = self._check(self._lib.conn_tls_read(self._handle(), buf, size))
        return bytes(ffi.buffer(buf, n))

    def read_into(self, buffer: Any, size: int = 0) -> int:
        """Like read(), into a writable buffer (bytearray, memoryview): the count."""
        view = ffi.from_buffer(buffer, require_writable=True)
        size = min(size or len(view), len(view))
        return self._check(self._lib.conn_tls_read(self._handle(), view, size))

    def write(self, data: Buffer) -> int:
        """writev() of one buffer."""
        return self.writev([data])

    def writev(self, buffers: Iterable[Buffer]) -> int:
        """Commits a prefix of the concatenated buffers and returns its length: the
        library owns those bytes and delivers them in order (keep calling flush() while
        pending_write > 0). The buffers are not copied in Python. WantWrite / WantRead:
        nothing was committed, and the next call may pass anything at all (OpenSSL's
        write-retry rule is the library's business)."""
        keep = [ffi.from_buffer(b) for b in buffers]
        iov = ffi.new("struct iovec[]", len(keep))
        for entry, view in zip(iov, keep):
            entry.iov_base = view
            entry.iov_len = len(view)
        return self._check(self._lib.conn_tls_writev(self._handle(), iov, len(keep)))

    def flush(self) -> None:
        """Sends committed bytes waiting for the socket; WantWrite while some wait."""
        self._check(self._lib.conn_tls_flush(self._handle()))

    def shutdown(self) -> None:
        """Flushes, then sends close_notify (WantWrite until it is on the socket)."""
        self._check(self._lib.conn_tls_shutdown(self._handle()))

    # -- blocking helpers -------------------------------------------------------------

    def do_handshake(self, timeout: Optional[float] = None) -> None:
        """Runs the handshake to the end, waiting on the socket."""
        self._blocking(self.handshake, timeout)

    def recv(self, size: int = 65536, timeout: Optional[float] = None) -> bytes:
        """Waits for data and returns up to size bytes; b"" when the peer closed."""
        return self._blocking(lambda: self.read(size), timeout)

    def recv_into(self, buffer: Any, size: int = 0, timeout: Optional[float] = None) -> int:
        """recv() into a writable buffer."""
        return self._blocking(lambda: self.read_into(buffer, size), timeout)

    def sendall(self, data: Union[Buffer, Iterable[Buffer]], timeout: Optional[float] = None) -> None:
        """Writes all of data (one buffer or several) and waits until it is on the socket."""
        views = [memoryview(data)] if isinstance(data, (bytes, bytearray, memoryview)) else [memoryview(d) for d in data]
        deadline = None if timeout is None else time.monotonic() + timeout
        while views:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            n = self._blocking(lambda: self.writev(views), left)
            while n and views:
                take = min(n, len(views[0]))
                n -= take
                views[0] = views[0][take:]
                if not len(views[0]):
                    views.pop(0)
        while self.pending_write:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._blocking(self.flush, left)

    def close(self) -> None:
        """Frees the TLS state (not the socket, which stays the caller's). Committed
        bytes not yet sent are dropped: shutdown() or flush() first to deliver them."""
        if self._ptr is not None and not self._in_pool:
            self._lib.conn_tls_free(self._ptr)
        self._ptr = None

    # -- state ------------------------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def socket(self) -> socket_module.socket:
        return self._sock

    @property
    def pending_read(self) -> int:
        """Decrypted bytes waiting: read again without waiting for the socket."""
        return self._lib.conn_tls_pending_read(self._handle())

    @property
    def pending_write(self) -> int:
        """Committed bytes not on the socket yet: keep write interest, flush()."""
        return self._lib.conn_tls_pending_write(self._handle())

    @property
    def last_error(self) -> str:
        """Why the most recent failing call on this connection failed ("" if none did)."""
        return _native.text(self._lib.conn_tls_last_error(self._handle())) if self._ptr is not None else ""

    @property
    def protocol(self) -> str:
        return _native.text(self._lib.conn_tls_protocol(self._handle()))

    @property
    def cipher(self) -> str:
        return _native.text(self._lib.conn_tls_cipher(self._handle()))

    @property
    def group(self) -> str:
        """The key-exchange group the handshake used (e.g. "X25519MLKEM768")."""
        return _native.text(self._lib.conn_tls_group(self._handle()))

    @property
    def session_reused(self) -> bool:
        return bool(self._lib.conn_tls_session_reused(self._handle()))

    @property
    def generation(self) -> int:
        """The context generation this connection was made with."""
        return self._lib.conn_tls_generation(self._handle())

    def peer_cert_pem(self) -> Optional[str]:
        """The peer's certificate as PEM, None when it sent none."""
        n = self._check(self._lib.conn_tls_peer_cert_pem(self._handle(), ffi.NULL, 0))
        if n == 0:
            return None
        buf = ffi.new("char[]", n + 1)
        self._check(self._lib.conn_tls_peer_cert_pem(self._handle(), buf, n + 1))
        return _native.text(buf)

    def peer_cert_field(self, name: str) -> Optional[str]:
        """A subject field ("CN", "O"...) of the peer's certificate, None when absent."""
        n = self._check(self._lib.conn_tls_peer_cert_field(self._handle(), name.encode(), ffi.NULL, 0))
        if n == 0:
            return None
        buf = ffi.new("char[]", n + 1)
        self._check(self._lib.conn_tls_peer_cert_field(self._handle(), name.encode(), buf, n + 1))
        return _native.text(buf)

    def peer_cert_san(self, san_type: str) -> list:
        """The peer certificate's subject alternative names of one type ("URI", "DNS" or
        "email"), in order, as bytes (an embedded NUL stays); [] when there are none."""
        count = ffi.new("size_t *")
        self._check(self._lib.conn_tls_peer_cert_san(self._handle(), san_type.encode(), 0, count, ffi.NULL, 0))
        names = []
        for i in range(count[0]):
            n = self._check(self._lib.conn_tls_peer_cert_san(self._handle(), san_type.encode(), i, ffi.NULL, ffi.NULL, 0))
            buf = ffi.new("char[]", n + 1)
            self._check(self._lib.conn_tls_peer_cert_san(self._handle(), san_type.encode(), i, ffi.NULL, buf, n + 1))
            names.append(ffi.buffer(buf, n)[:])
        return names

    def set_user_timeout(self, ms: int) -> None:
        """TCP_USER_TIMEOUT: sent data unacknowledged for ms fails the connection
        ("peer timed out"); 0 turns it off. The caller's value wins over keepalive."""
        self._check(self._lib.conn_tls_set_user_timeout(self._handle(), ms))

    def set_keepalive(self, idle_s: int, interval_s: int, count: int) -> None:
        """TCP keepalive; an idle dead peer fails the connection within
        idle_s + interval_s * count seconds. idle_s 0 turns it off."""
        self._check(self._lib.conn_tls_set_keepalive(self._handle(), idle_s, interval_s, count))


def wrap(
    sock: socket_module.socket,
    context: Context,
    server_side: bool = False,
    server_hostname: Optional[str] = None,
    handshake: bool = True,
    timeout: Optional[float] = None,
) -> Connection:
    """Puts a connected socket on TLS: a client (server_hostname is sent as SNI and must
    match the certificate; None checks the chain only) or a server. Runs the handshake
    to the end unless handshake is False. The socket stays the caller's."""
    conn = Connection._make(context, sock, server_side, server_hostname)
    if handshake:
        try:
            conn.do_handshake(timeout)
        except BaseException:
            conn.close()
            raise
    return conn


__all__ = ["Connection", "Error", "wrap"]
