"""Loading libconntls.so.0 through cffi's ABI mode, and turning its status codes into
exceptions. The declarations are conntls.cdef, which ``make header`` generates from the
same sources as conntls.h; nothing here copies them."""

from __future__ import annotations

import os
import threading
from importlib import resources
from typing import Any, Optional, TypeVar

import cffi

from .errors import Busy, Error, InvalidArgument, TLSError, WantRead, WantWrite

ffi = cffi.FFI()
ffi.cdef(resources.files(__package__).joinpath("conntls.cdef").read_text())
# ssize_t and size_t come from cffi itself.

OK, ERR, WANT_READ, WANT_WRITE, EINVAL, BUSY = 0, -1, -2, -3, -4, -5

_lock = threading.Lock()
_lib: Any = None
_path: Optional[str] = None


def use_library(path: str) -> None:
    """Load libconntls from ``path`` instead of by its soname. Must come before the first
    use of the library in this process."""
    global _path
    with _lock:
        if _lib is not None:
            raise RuntimeError(f"libconntls is already loaded (from {_path or 'libconntls.so.0'})")
        _path = path


def lib() -> Any:
    """The library, loaded on first use: the path given to use_library(), else the
    CONNTLS_LIBRARY environment variable, else libconntls.so.0 through the dynamic
    loader (LD_LIBRARY_PATH, the ld.so cache: an installed libconntls0 package)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = _path or os.environ.get("CONNTLS_LIBRARY") or "libconntls.so.0"
            try:
                loaded = ffi.dlopen(path)
            except OSError as e:
                raise ImportError(
                    f"cannot load {path}: install libconntls (make install, or the libconntls0 package), "
                    "or set CONNTLS_LIBRARY to the library's path"
                ) from e
            _path = path
            _lib = loaded
            from . import _logging

            _logging.install(loaded)
    return _lib


def text(cstring: Any) -> str:
    """A C string from the library as str (its messages are UTF-8; paths may not be)."""
    return ffi.string(cstring).decode("utf-8", "replace") if cstring != ffi.NULL else ""


_EXCEPTIONS = {ERR: TLSError, EINVAL: InvalidArgument, WANT_READ: WantRead, WANT_WRITE: WantWrite, BUSY: Busy}


def error(status: int, message: str) -> Error:
    """The exception for a status code, carrying the library's message."""
    cls = _EXCEPTIONS.get(status, Error)
    return cls(status, message or text(lib().conn_tls_status_name(status)))


def thread_error() -> Error:
    """The exception for the calling thread's most recent failure (a NULL from a
    constructor, for instance)."""
    library = lib()
    return error(library.conn_tls_thread_last_status(), text(library.conn_tls_thread_last_error()))


def encode(value: Any) -> bytes:
    """An option value or path as the bytes the C API takes."""
    if isinstance(value, bool):
        return b"yes" if value else b"no"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, bytes):
        return value
    return os.fsencode(value)


_Owner = TypeVar("_Owner", bound="Owner")


class Owner:
    """What owns a native handle: a ``with`` block and garbage collection both end in
    ``close()``, which each owner defines and which does nothing the second time."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
