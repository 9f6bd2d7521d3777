use std::ffi::{c_char, c_void};

use crate::ffi::boundary;
use crate::logging::{self, LogCallback};

/// The library's version, "MAJOR.MINOR.PATCH" (the same as CONN_TLS_VERSION in this
/// header when the header matches the library). Static; never freed.
#[no_mangle]
pub extern "C" fn conn_tls_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sends the library's log messages to `cb` (NULL: drop them; the default). Levels follow
/// syslog: 3 error, 4 warning, 6 info, 7 debug. `cb` may be called from any thread that
/// calls into the library, with `ud` as given; `msg` is valid only during the call. The
/// library never prints to stdout or stderr.
#[no_mangle]
pub extern "C" fn conn_tls_set_log(cb: LogCallback, ud: *mut c_void) {
    boundary!((), logging::set_callback(cb, ud))
}
