"""The library's status codes as exceptions, each carrying the library's message."""

from __future__ import annotations


class Error(Exception):
    """A conntls call did not succeed. ``status`` is the C status code (CONN_TLS_*),
    ``message`` what the library said."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TLSError(Error):
    """CONN_TLS_ERR: the call failed; for a connection this is fatal, and every later
    call fails the same way. Also what a context that does not build raises."""


class InvalidArgument(Error, ValueError):
    """CONN_TLS_EINVAL: a bad argument (an unknown option, a malformed value, a bad fd,
    a closed handle...); nothing changed."""


class WantIO(Error):
    """Nothing was done; call again when the socket is ready (non-blocking use)."""


class WantRead(WantIO):
    """CONN_TLS_WANT_READ: call again when the socket is readable."""


class WantWrite(WantIO):
    """CONN_TLS_WANT_WRITE: call again when the socket is writable."""


class Busy(Error):
    """CONN_TLS_BUSY: the handshake pool is full; nothing was taken."""
