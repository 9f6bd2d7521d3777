//! The `log` crate bridged to the caller's callback. Nothing is ever printed.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{OnceLock, RwLock};

/// The C callback: `ud` as given, a syslog level, a NUL-terminated message valid for the call.
pub type LogCallback = Option<unsafe extern "C" fn(ud: *mut c_void, level: c_int, msg: *const c_char)>;

#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
    user_data: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata) -> bool {
        SINK.read().map(|s| s.is_some()).unwrap_or(false)
    }

    fn log(&self, record: &log::Record) {
        // Copy the sink out first: the callback may itself call conn_tls_set_log.
        let Some(sink) = *SINK.read().unwrap_or_else(|e| e.into_inner()) else { return };
        let level = match record.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 6,
            log::Level::Debug | log::Level::Trace => 7,
        };
        let msg = CString::new(record.args().to_string().replace('\0', " ")).unwrap_or_default();
        unsafe { (sink.callback)(sink.user_data as *mut c_void, level, msg.as_ptr()) };
    }

    fn flush(&self) {}
}

static BRIDGE: Bridge = Bridge;

/// Sends library messages to `callback` (None: drop them).
pub fn set_callback(callback: LogCallback, user_data: *mut c_void) {
    // A Rust host may have its own logger; then conntls's messages go there instead.
    static OURS: OnceLock<bool> = OnceLock::new();
    let ours = *OURS.get_or_init(|| log::set_logger(&BRIDGE).is_ok());
    *SINK.write().unwrap_or_else(|e| e.into_inner()) =
        callback.map(|callback| Sink { callback, user_data: user_data as usize });
    if ours {
        log::set_max_level(if callback.is_some() { log::LevelFilter::Debug } else { log::LevelFilter::Off });
    }
}
