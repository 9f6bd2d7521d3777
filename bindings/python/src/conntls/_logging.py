"""The library's log callback bridged to Python's logging (the "conntls" logger).

The callback runs on whichever thread the library logs from: a thread inside a conntls
call, or one of the handshake pool's own threads; cffi takes the GIL for it. The
library guarantees that once conn_tls_set_log returns, the old callback is not running
and never runs again, so replacing or removing it here is safe at any time (and at
interpreter exit, which removes it)."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from ._native import ffi, text

logger = logging.getLogger("conntls")
_LEVELS = {3: logging.ERROR, 4: logging.WARNING, 6: logging.INFO, 7: logging.DEBUG}


def _on_error(exception: Any, value: Any, traceback: Any) -> None:
    # A failing handler must not print from a library thread; logging reports its own.
    return None


@ffi.callback("conn_tls_log_callback", onerror=_on_error)
def _callback(ud: Any, level: int, message: Any) -> None:
    level = _LEVELS.get(level, logging.INFO)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", text(message))


_library: Any = None


def install(library: Any) -> None:
    """Sends the library's messages to the "conntls" logger (done when it is loaded)."""
    global _library
    _library = library
    library.conn_tls_set_log(_callback, ffi.NULL)
    atexit.register(uninstall)


def uninstall() -> None:
    """Stops sending messages; returns once no call of the callback is running."""
    if _library is not None:
        _library.conn_tls_set_log(ffi.NULL, ffi.NULL)


def reinstall() -> None:
    """Sends messages to Python's logging again after uninstall()."""
    if _library is not None:
        _library.conn_tls_set_log(_callback, ffi.NULL)
