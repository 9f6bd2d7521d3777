"""conntls for Python: TLS connections over libconntls.so.0 (cffi, ABI mode; no compiler
at install time).

    import socket, conntls
    ctx = conntls.Context({"ca-cert-file": "ca.crt"})
    sock = socket.create_connection(("127.0.0.1", 6380))
    with conntls.wrap(sock, ctx, server_hostname="localhost") as tls:
        tls.sendall(b"PING\\r\\n")
        print(tls.recv())

The library is found by CONNTLS_LIBRARY, conntls.use_library(path), or its soname
(libconntls.so.0) through the dynamic loader. Its log messages go to the "conntls" logger.
The header, conntls.h, documents every call; these classes say the same in Python terms.
"""

from ._native import use_library
from .connection import Connection, wrap
from .context import CERT_CA, CERT_CLIENT, CERT_SERVER, CertInfo, Config, Context
from .errors import Busy, Error, InvalidArgument, TLSError, WantIO, WantRead, WantWrite
from .pool import Pool

__version__ = "0.2.0"


def version() -> str:
    """libconntls's version ("0.2.0")."""
    from . import _native

    return _native.text(_native.lib().conn_tls_version())


def openssl_version() -> str:
    """The OpenSSL the library runs on."""
    from . import _native

    return _native.text(_native.lib().conn_tls_openssl_version())


__all__ = [
    "Busy", "CERT_CA", "CERT_CLIENT", "CERT_SERVER", "CertInfo", "Config", "Connection", "Context", "Error",
    "InvalidArgument", "Pool", "TLSError", "WantIO", "WantRead", "WantWrite", "openssl_version", "use_library",
    "version", "wrap",
]
