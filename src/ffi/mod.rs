//! The C boundary: the one macro every exported function runs its body in, and the
//! mapping between opaque C handles and the Rust objects behind them.

use std::ffi::{c_char, c_int, CStr};
use std::sync::Once;

use crate::connection::Error;

pub const CONN_TLS_OK: c_int = 0;
pub const CONN_TLS_ERR: c_int = -1;
pub const CONN_TLS_WANT_READ: c_int = -2;
pub const CONN_TLS_WANT_WRITE: c_int = -3;
pub const CONN_TLS_EINVAL: c_int = -4;
/// The handshake pool is full: nothing was taken; try again later (or close).
pub const CONN_TLS_BUSY: c_int = -5;

/// Runs `$body` so that no panic crosses into C (the call returns `$default` instead) and
/// the calling thread's OpenSSL error queue is empty before and after.
macro_rules! boundary {
    ($default:expr, $body:expr) => {{
        $crate::ffi::enter();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body));
        $crate::ossl::clear_error_queue();
        match result {
            Ok(value) => value,
            Err(_) => $default,
        }
    }};
}
pub(crate) use boundary;

/// Work done on the way in: the panic hook (once) and a clean error queue.
pub fn enter() {
    static HOOK: Once = Once::new();
    // The default hook prints to stderr, which a library must never do.
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| log::error!("conntls: internal error: {info}"))));
    crate::ossl::clear_error_queue();
}

pub fn status(error: &Error) -> c_int {
    match error {
        Error::WantRead => CONN_TLS_WANT_READ,
        Error::WantWrite => CONN_TLS_WANT_WRITE,
        Error::Fatal(_) => CONN_TLS_ERR,
        Error::Invalid(_) => CONN_TLS_EINVAL,
    }
}

/// A new handle owning `value`.
pub fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by `into_handle`; NULL is ignored.
///
/// # Safety
/// `handle` is NULL or came from `into_handle::<T>` and is not used again.
pub unsafe fn free_handle<T>(handle: *mut T) {
    if !handle.is_null() {
        drop(Box::from_raw(handle));
    }
}

/// # Safety
/// `handle` is NULL or a live handle of type T.
pub unsafe fn handle_ref<'a, T>(handle: *const T) -> Option<&'a T> {
    handle.as_ref()
}

/// # Safety
/// `handle` is NULL or a live handle of type T used by this thread only for the call.
pub unsafe fn handle_mut<'a, T>(handle: *mut T) -> Option<&'a mut T> {
    handle.as_mut()
}

/// A C string argument as UTF-8; None for NULL, Err for bytes that are not UTF-8.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string.
pub unsafe fn str_arg<'a>(s: *const c_char, what: &str) -> Result<Option<&'a str>, String> {
    if s.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(s).to_str().map(Some).map_err(|_| format!("{what} is not UTF-8"))
}

/// snprintf's contract for bytes the caller asked for: `data` and a NUL go to `buf` only
/// when `len` is larger than `data`; the length of `data` is returned either way.
///
/// # Safety
/// `buf` is NULL with `len` 0, or points to at least `len` writable bytes.
pub unsafe fn copy_out(data: &[u8], buf: *mut c_char, len: usize) -> usize {
    if len > data.len() {
        std::ptr::copy_nonoverlapping(data.as_ptr().cast(), buf, data.len());
        *buf.add(data.len()) = 0;
    }
    data.len()
}

/// Writes `msg` into the caller's `err`/`errlen` buffer, truncated and NUL-terminated.
///
/// # Safety
/// `err` is NULL or points to at least `errlen` writable bytes.
pub unsafe fn write_message(err: *mut c_char, errlen: usize, msg: &str) {
    if err.is_null() || errlen == 0 {
        return;
    }
    let mut n = msg.len().min(errlen - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(msg.as_ptr().cast(), err, n);
    *err.add(n) = 0;
}
