"""The handshake pool (conn_tls_pool): worker threads that run submitted handshakes to
the end, for servers without threads of their own."""

from __future__ import annotations

import itertools
import threading
from typing import Any, Optional, Tuple

from . import _native
from ._native import ffi
from .connection import Connection
from .errors import Error, InvalidArgument


class Pool(_native.Owner):
    """``threads`` workers; at most ``max_inflight`` connections inside at once; a
    handshake not done in ``timeout_ms`` fails ("handshake timed out").

    submit() hands a Connection over (raises Busy when full: nothing was taken);
    collect() gives finished ones back. fileno() is readable while some wait, for an
    event loop. The library's log messages from the workers reach Python's logging on
    those threads."""

    _ptr: Any = None  # until the C object exists: close() and __del__ then do nothing

    def __init__(self, threads: int = 2, max_inflight: int = 1024, timeout_ms: int = 10000) -> None:
        self._lib = _native.lib()
        self._inside: dict[int, Tuple[Connection, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        ptr = self._lib.conn_tls_pool_new(threads, max_inflight, timeout_ms)
        if ptr == ffi.NULL:
            raise _native.thread_error()
        self._ptr = ptr

    def _handle(self) -> Any:
        if self._ptr is None:
            raise InvalidArgument(_native.EINVAL, "the pool is closed")
        return self._ptr

    def submit(self, conn: Connection, tag: Any = None) -> None:
        """Hands conn (handshake not done) to the pool until collect() returns it."""
        with self._lock:
            key = next(self._ids)
            r = self._lib.conn_tls_pool_submit(self._handle(), conn._handle(), ffi.cast("void *", key))
            if r != _native.OK:
                raise _native.thread_error()
            conn._in_pool = True
            self._inside[key] = (conn, tag)

    def collect(self) -> Optional[Tuple[Connection, Any, Optional[Error]]]:
        """One finished connection, its tag, and None when its handshake succeeded or the
        exception it failed with; None when none waits."""
        c, user, status = ffi.new("conn_tls **"), ffi.new("void **"), ffi.new("int *")
        with self._lock:
            r = self._lib.conn_tls_pool_collect(self._handle(), c, user, status)
            if r != 1:
                return None
            conn, tag = self._inside.pop(int(ffi.cast("uintptr_t", user[0])))
        conn._in_pool = False
        failure = None if status[0] == _native.OK else _native.error(status[0], conn.last_error)
        return conn, tag, failure

    def fileno(self) -> int:
        return self._lib.conn_tls_pool_fd(self._handle())

    def close(self) -> None:
        """Stops the workers; connections still inside are freed (their sockets stay)."""
        if self._ptr is not None:
            self._lib.conn_tls_pool_free(self._ptr)
            self._ptr = None
            for conn, _ in self._inside.values():
                conn._ptr = None
                conn._in_pool = False
            self._inside.clear()
