//! The C boundary: the one macro every exported function runs its body in, and the
//! mapping between opaque C handles and the Rust objects behind them.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::Once;

use crate::connection::Error;

/// Status codes (conn_tls_status). Functions return them as int; functions returning
/// ssize_t return a count >= 0 or one of them. The values are fixed and never reused.
/// (An enum, so that every binding generator sees one signed type for all of them.)
#[repr(C)]
#[allow(non_camel_case_types)]
pub enum Status {
    /// Done.
    CONN_TLS_OK = 0,
    /// Failed: fatal for the connection; conn_tls_last_error (or the err buffer, or
    /// conn_tls_thread_last_error) says why.
    CONN_TLS_ERR = -1,
    /// Nothing done; call again when the fd is readable.
    CONN_TLS_WANT_READ = -2,
    /// Nothing done; call again when the fd is writable.
    CONN_TLS_WANT_WRITE = -3,
    /// A bad argument (NULL handle, bad iov, unknown option...); nothing changed.
    CONN_TLS_EINVAL = -4,
    /// The handshake pool is full: nothing was taken; try again later (or close).
    CONN_TLS_BUSY = -5,
}

pub(crate) const CONN_TLS_OK: c_int = Status::CONN_TLS_OK as c_int;
pub(crate) const CONN_TLS_ERR: c_int = Status::CONN_TLS_ERR as c_int;
pub(crate) const CONN_TLS_WANT_READ: c_int = Status::CONN_TLS_WANT_READ as c_int;
pub(crate) const CONN_TLS_WANT_WRITE: c_int = Status::CONN_TLS_WANT_WRITE as c_int;
pub(crate) const CONN_TLS_EINVAL: c_int = Status::CONN_TLS_EINVAL as c_int;
pub(crate) const CONN_TLS_BUSY: c_int = Status::CONN_TLS_BUSY as c_int;

/// The name of a status value, for conn_tls_status_name.
pub fn status_name(status: c_int) -> &'static CStr {
    match status {
        CONN_TLS_OK => c"CONN_TLS_OK",
        CONN_TLS_ERR => c"CONN_TLS_ERR",
        CONN_TLS_WANT_READ => c"CONN_TLS_WANT_READ",
        CONN_TLS_WANT_WRITE => c"CONN_TLS_WANT_WRITE",
        CONN_TLS_EINVAL => c"CONN_TLS_EINVAL",
        CONN_TLS_BUSY => c"CONN_TLS_BUSY",
        _ => c"unknown status",
    }
}

/// Runs `$body` so that no panic crosses into C (the call returns `$default` instead,
/// recorded as a CONN_TLS_ERR for the thread) and the calling thread's OpenSSL error
/// queue is empty before and after, inside a fork section (`crate::fork`): a fork waits
/// until the call is out of OpenSSL.
///
/// Emptying the queue costs about as much as a small write (ERR_peek_error looks up the
/// thread's error state: about 200 instructions on OpenSSL 3.0, one GET on Valkey made
/// six of them), so the calls a client makes per request (read, write, writev, flush,
/// pending_read/_write) take the `data_path` form, which does not touch the queue itself:
/// their core empties it right before each OpenSSL call whose result depends on it, a
/// failed call takes what OpenSSL queued into its message, and a call that succeeded
/// queued nothing. So no error of conntls's outlives its call, and none from before
/// changes a result; errors the caller queued itself stay until conntls's next OpenSSL
/// call (the header says so).
macro_rules! boundary {
    ($default:expr, $body:expr) => {{
        let _section = $crate::fork::section();
        $crate::ossl::clear_error_queue();
        let value = $crate::ffi::boundary!(data_path, $default, $body);
        $crate::ossl::clear_error_queue();
        value
    }};
    (data_path, $default:expr, $body:expr) => {{
        let _section = $crate::fork::section();
        $crate::ffi::enter();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(payload) => {
                // A panic may have left OpenSSL's errors behind.
                $crate::ossl::clear_error_queue();
                $crate::ffi::record_panic(payload);
                $default
            }
        }
    }};
}
pub(crate) use boundary;

thread_local! {
    /// The most recent failure on this thread: conn_tls_thread_last_status / _error.
    static THREAD_LAST: RefCell<(c_int, Option<CString>)> = const { RefCell::new((CONN_TLS_OK, None)) };
}

/// Records a failed call's status and message for the calling thread; returns `status`.
pub fn fail(status: c_int, msg: &str) -> c_int {
    let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    let _ = THREAD_LAST.try_with(|last| *last.borrow_mut() = (status, Some(text)));
    status
}

/// Writes `msg` into the caller's err/errlen buffer and records it; returns `status`.
///
/// # Safety
/// As `write_message`.
pub unsafe fn fail_with(err: *mut c_char, errlen: usize, status: c_int, msg: &str) -> c_int {
    write_message(err, errlen, msg);
    fail(status, msg)
}

/// The calling thread's most recent failure: its status (CONN_TLS_OK when none) and message.
pub fn thread_last() -> (c_int, *const c_char) {
    THREAD_LAST.try_with(|last| {
        let last = last.borrow();
        (last.0, last.1.as_deref().unwrap_or(c"").as_ptr())
    })
    .unwrap_or((CONN_TLS_OK, c"".as_ptr()))
}

#[cold]
pub fn record_panic(payload: Box<dyn std::any::Any + Send>) {
    let what = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    fail(CONN_TLS_ERR, &format!("internal error in conntls (a bug, please report it): {}", what.unwrap_or("panic")));
}

/// Work done on the way in: the panic hook, once.
pub fn enter() {
    static HOOK: Once = Once::new();
    // The default hook prints to stderr, which a library must never do.
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| log::error!("conntls: internal error: {info}"))));
}

/// The status code of an error.
pub fn status(error: &Error) -> c_int {
    match error {
        Error::WantRead => CONN_TLS_WANT_READ,
        Error::WantWrite => CONN_TLS_WANT_WRITE,
        Error::Fatal(_) => CONN_TLS_ERR,
        Error::Invalid(_) => CONN_TLS_EINVAL,
    }
}

/// The status code of an error a call returns, recording failures (not WANT_*) for the
/// thread.
pub fn failed(error: &Error) -> c_int {
    match error {
        Error::Fatal(msg) | Error::Invalid(msg) => fail(status(error), msg),
        Error::WantRead | Error::WantWrite => status(error),
    }
}

/// A constructor's result: a new handle, or NULL with the reason logged as a warning and
/// recorded for the thread (conn_tls_thread_last_status / _error).
pub fn made<T>(what: &str, result: Result<T, Error>) -> *mut T {
    match result {
        Ok(value) => into_handle(value),
        Err(error) => {
            log::warn!("conntls: {what}: {error}");
            failed(&error);
            std::ptr::null_mut()
        }
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

/// A C string argument as bytes; None for NULL.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string.
pub unsafe fn bytes_arg<'a>(s: *const c_char) -> Option<&'a [u8]> {
    (!s.is_null()).then(|| CStr::from_ptr(s).to_bytes())
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
