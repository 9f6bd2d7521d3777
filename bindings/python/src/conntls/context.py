"""Configurations and contexts (conn_tls_config, conn_tls_ctx)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from . import _native
from ._native import ffi
from .errors import InvalidArgument

OptionValue = Union[str, bytes, os.PathLike, int, bool]

CERT_SERVER, CERT_CLIENT, CERT_CA = 0, 1, 2


class Config(_native.Owner):
    """A set of options, named as Valkey's tls-* settings without the prefix
    ("cert-file", "ca-cert-file", "auth-clients", "groups", "tcp-user-timeout"...).

    Values may be str, bytes, paths, ints or bools (yes/no). Only syntax is checked
    here; files are read when a Context is built. Usable from several threads.
    ``Config({"cert-file": "server.crt"}, auth_clients="no")``: underscores in keyword
    names become hyphens."""

    _ptr: Any = None  # until the C object exists: close() and __del__ then do nothing

    def __init__(self, options: Optional[Mapping[str, OptionValue]] = None, **kwargs: OptionValue) -> None:
        self._lib = _native.lib()
        ptr = self._lib.conn_tls_config_new()
        if ptr == ffi.NULL:
            raise _native.thread_error()
        self._ptr = ptr
        for name, value in {**(options or {}), **{k.replace("_", "-"): v for k, v in kwargs.items()}}.items():
            self.set(name, value)

    def set(self, name: str, value: OptionValue) -> None:
        """Sets one option; raises InvalidArgument (an unknown name, a malformed value)
        with the library's message, and then the earlier value stays."""
        err = ffi.new("char[]", 512)
        r = self._lib.conn_tls_config_set(self._handle(), name.encode(), _native.encode(value), err, 512)
        if r != _native.OK:
            raise _native.error(r, _native.text(err))

    def _handle(self) -> Any:
        if self._ptr is None:
            raise InvalidArgument(_native.EINVAL, "the configuration is closed")
        return self._ptr

    def close(self) -> None:
        """Frees the configuration (contexts built from it are not affected)."""
        if self._ptr is not None:
            self._lib.conn_tls_config_free(self._ptr)
            self._ptr = None


@dataclass(frozen=True)
class CertInfo:
    """What conn_tls_ctx_cert_info reports about a set of certificates."""

    count: int
    not_after: int  # the earliest expiry, seconds since the epoch (0: none)
    serial: str  # of the certificate that expires first, upper-case hex


def _config_of(config: Union[Config, Mapping[str, OptionValue]]) -> tuple[Config, bool]:
    if isinstance(config, Config):
        return config, False
    return Config(config), True


class Context(_native.Owner):
    """What connections are made from: the live generation of certificates and settings.

    Built from a Config (or a mapping of options, made into one); reading and checking
    every file. Raises TLSError with the library's message (the file and the reason)
    when it does not build. Usable from any number of threads at once; reload() swaps
    in a new generation atomically while connections run."""

    _ptr: Any = None  # until the C object exists: close() and __del__ then do nothing

    def __init__(self, config: Union[Config, Mapping[str, OptionValue]]) -> None:
        self._lib = _native.lib()
        cfg, own = _config_of(config)
        try:
            err = ffi.new("char[]", 1024)
            ptr = self._lib.conn_tls_ctx_new(cfg._handle(), err, 1024)
            if ptr == ffi.NULL:
                raise _native.thread_error()
            self._ptr = ptr
        finally:
            if own:
                cfg.close()

    def _handle(self) -> Any:
        if self._ptr is None:
            raise InvalidArgument(_native.EINVAL, "the context is closed")
        return self._ptr

    def _reload(self, config: Union[Config, Mapping[str, OptionValue]], only_if_changed: bool) -> int:
        cfg, own = _config_of(config)
        try:
            err = ffi.new("char[]", 1024)
            call = self._lib.conn_tls_ctx_reload_if_changed if only_if_changed else self._lib.conn_tls_ctx_reload
            r = call(self._handle(), cfg._handle(), err, 1024)
        finally:
            if own:
                cfg.close()
        if r < 0:
            raise _native.error(r, _native.text(err))
        return r

    def reload(self, config: Union[Config, Mapping[str, OptionValue]]) -> None:
        """Builds a new generation from ``config`` and swaps it in. On failure raises
        TLSError and nothing changes. Connections made before keep their generation."""
        self._reload(config, False)

    def reload_if_changed(self, config: Union[Config, Mapping[str, OptionValue]]) -> bool:
        """Reloads only when an option or the content of a named file changed; True when
        a new generation was swapped in."""
        return self._reload(config, True) == 1

    @property
    def generation(self) -> int:
        """1 after building, one more per successful reload."""
        return self._lib.conn_tls_ctx_generation(self._handle())

    def cert_info(self, which: int = CERT_SERVER) -> CertInfo:
        """Facts about the server (CERT_SERVER), client (CERT_CLIENT) or CA (CERT_CA)
        certificates of the live generation."""
        not_after, count, serial = ffi.new("int64_t *"), ffi.new("size_t *"), ffi.new("char[]", 128)
        r = self._lib.conn_tls_ctx_cert_info(self._handle(), which, not_after, count, serial, 128)
        if r < 0:
            raise _native.thread_error()
        return CertInfo(count=count[0], not_after=not_after[0], serial=_native.text(serial))

    def server(self, sock: Any) -> Any:
        """A server Connection on an accepted, connected socket (handshake not started;
        see Connection). The socket stays the caller's."""
        from .connection import Connection

        return Connection._make(self, sock, True, None)

    def client(self, sock: Any, server_name: Optional[str] = None) -> Any:
        """A client Connection on a connected socket (handshake not started).
        server_name is sent as SNI and must match the certificate; None checks the
        chain only. Client defaults: TCP_USER_TIMEOUT 30 s, keepalive after 15 s."""
        from .connection import Connection

        return Connection._make(self, sock, False, server_name)

    def close(self) -> None:
        """Frees the context; connections made from it keep working."""
        if self._ptr is not None:
            self._lib.conn_tls_ctx_free(self._ptr)
            self._ptr = None
