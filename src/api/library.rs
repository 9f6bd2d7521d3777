use std::ffi::{c_char, c_int, c_void};

use crate::ffi::{self, boundary};
use crate::logging::{self, LogCallback};

/// The library's version, "MAJOR.MINOR.PATCH" (the same as CONN_TLS_VERSION in this
/// header when the header matches the library). Static; never freed.
#[no_mangle]
pub extern "C" fn conn_tls_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The OpenSSL the library runs on, as OpenSSL names itself (e.g. "OpenSSL 3.0.19 27 Jan
/// 2026"): the system's libssl, or the one linked into the library. Static; never freed.
#[no_mangle]
pub extern "C" fn conn_tls_openssl_version() -> *const c_char {
    boundary!(c"".as_ptr(), crate::ossl::openssl_version().as_ptr())
}

/// Sends the library's log messages to `cb` (NULL: drop them; the default). Levels follow
/// syslog: 3 error, 4 warning, 6 info, 7 debug. The library never prints to stdout or
/// stderr.
///
/// Threads: `cb` runs, with `ud` as given, on whichever thread the library logs from:
/// any thread in a conn_tls_* call (at the end of the call that logged, once the library
/// is out of OpenSSL and its locks, so `cb` may fork or wait for a thread that forks),
/// and the handshake pool's own worker threads (named conntls-hs-N), so it must be
/// thread-safe. `msg` is valid only during the call.
/// Messages the library would log while `cb` itself is running on the same thread (`cb`
/// calling into the library) are dropped, never delivered re-entrantly.
///
/// Lifetime: once conn_tls_set_log returns, the previous callback is not running on any
/// thread (the call waits for calls of it in progress to finish) and is never called
/// again, so its `ud` may be freed. Called from inside the callback itself, it does not
/// wait for that one call (the caller's own), only for calls on other threads.
#[no_mangle]
pub extern "C" fn conn_tls_set_log(cb: LogCallback, ud: *mut c_void) {
    boundary!((), logging::set_callback(cb, ud))
}

/// The name of a status code, e.g. "CONN_TLS_WANT_READ" for CONN_TLS_WANT_READ, so
/// bindings and messages need not copy the table; "unknown status" for any other value.
/// Static string; never NULL. Threads: any.
#[no_mangle]
pub extern "C" fn conn_tls_status_name(status: c_int) -> *const c_char {
    ffi::status_name(status).as_ptr()
}

/// The status of the most recent call on the calling thread that failed: CONN_TLS_ERR,
/// CONN_TLS_EINVAL or CONN_TLS_BUSY, whatever the call returned it as (a NULL from a
/// constructor, a status, a negative count); CONN_TLS_OK when no call on this thread has
/// failed yet. WANT_READ / WANT_WRITE are not failures and leave it alone, and so do calls
/// that succeed: read it right after the call that failed.
/// For bindings, which must turn a NULL from conn_tls_new_server, conn_tls_new_client,
/// conn_tls_ctx_new or conn_tls_pool_new into an error with a message.
#[no_mangle]
pub extern "C" fn conn_tls_thread_last_status() -> c_int {
    ffi::thread_last().0
}

/// The message of that failure (as conn_tls_last_error's, or the err buffer's, for the
/// calls that have those); "" when none. Never NULL. The string belongs to the calling
/// thread and stays valid until the next failing call on that thread.
#[no_mangle]
pub extern "C" fn conn_tls_thread_last_error() -> *const c_char {
    ffi::thread_last().1
}
