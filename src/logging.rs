//! The `log` crate bridged to the caller's callback. Nothing is ever printed.
//!
//! A caller, a binding above all, must know when it may free the callback and the user
//! data it gave: so replacing the callback waits until no call of the old one is running.
//! Each call of the callback holds a reference to the sink it took (an Arc); a swap
//! replaces the sink and then waits until no other reference to the old one is left. The
//! lock is held only inside fork sections (`crate::fork`), never while the callback runs
//! nor while a swap waits: a fork meanwhile cannot leave it held in the child. Messages
//! logged inside a section (inside any library call) are kept per thread and delivered
//! when it ends: the callback, the caller's code, may wait for a thread that is forking,
//! and that fork waits for the section.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::fork::{self, Held, Lock};

/// The C callback: `ud` as given, a syslog level, a NUL-terminated message valid for the call.
pub type LogCallback = Option<unsafe extern "C" fn(ud: *mut c_void, level: c_int, msg: *const c_char)>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
    user_data: usize,
}

static SINK: Lock<Option<Arc<Sink>>> = Lock::new(None);

thread_local! {
    /// The sink whose callback this thread is running, or null.
    static INSIDE: Cell<*const Sink> = const { Cell::new(std::ptr::null()) };
    /// Messages logged inside this thread's section, for the callback once it ends.
    static DEFERRED: RefCell<Vec<(c_int, CString)>> = const { RefCell::new(Vec::new()) };
}

fn sink() -> Held<'static, Option<Arc<Sink>>> {
    SINK.lock()
}

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata) -> bool {
        sink().is_some()
    }

    fn log(&self, record: &log::Record) {
        if calling_back() {
            return;
        }
        let level = match record.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 6,
            log::Level::Debug | log::Level::Trace => 7,
        };
        let msg = CString::new(record.args().to_string().replace('\0', " ")).unwrap_or_default();
        if fork::defer_log() {
            DEFERRED.with(|d| d.borrow_mut().push((level, msg)));
        } else {
            deliver(level, &msg);
        }
    }

    fn flush(&self) {}
}

/// The callback calling into the library: its messages are dropped, not delivered
/// re-entrantly (which could recurse without end).
fn calling_back() -> bool {
    !INSIDE.with(Cell::get).is_null()
}

fn deliver(level: c_int, msg: &CStr) {
    if calling_back() {
        return;
    }
    let Some(current) = sink().clone() else { return };
    INSIDE.with(|inside| inside.set(Arc::as_ptr(&current)));
    unsafe { (current.callback)(current.user_data as *mut c_void, level, msg.as_ptr()) };
    INSIDE.with(|inside| inside.set(std::ptr::null()));
    // Given back under the lock, so a swap counting this sink's references sees it go.
    let locked = sink();
    drop(current);
    drop(locked);
}

/// Delivers the messages this thread logged inside the section that just ended.
pub(crate) fn deliver_deferred() {
    let deferred = DEFERRED.try_with(|d| std::mem::take(&mut *d.borrow_mut())).unwrap_or_default();
    for (level, msg) in deferred {
        deliver(level, &msg);
    }
}

static BRIDGE: Bridge = Bridge;

/// Sends library messages to `callback` (None: drop them). Returns once no call of the
/// previous callback is running on another thread.
pub fn set_callback(callback: LogCallback, user_data: *mut c_void) {
    // A Rust host may have its own logger; then conntls's messages go there instead.
    static OURS: OnceLock<bool> = OnceLock::new();
    let ours = *OURS.get_or_init(|| log::set_logger(&BRIDGE).is_ok());
    let old = std::mem::replace(
        &mut *sink(),
        callback.map(|callback| Arc::new(Sink { callback, user_data: user_data as usize })),
    );
    if ours {
        log::set_max_level(if callback.is_some() { log::LevelFilter::Debug } else { log::LevelFilter::Off });
    }
    let Some(old) = old else { return };
    // References to `old`: this one, plus one per call of it still running. Called from
    // inside the callback, this thread's own call cannot end first: it is not waited for.
    // Polled with the call's section suspended (a swap is rare, a call short): waiting
    // inside one would hold up a fork, and the fork the calls that must end.
    let own_call = usize::from(INSIDE.with(Cell::get) == Arc::as_ptr(&old));
    fork::blocking(|| {
        while {
            let _locked = sink();
            Arc::strong_count(&old) > 1 + own_call
        } {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
}

/// In a forked child: the calls of the callback that were running on other threads at the
/// fork never end here, so their references to the sink are written off (a fresh sink with
/// the same callback; the old one is left to them) and a swap does not wait for them.
pub(crate) fn after_fork_in_child() {
    let mut locked = sink();
    if let Some(old) = locked.take() {
        *locked = Some(Arc::new(Sink { callback: old.callback, user_data: old.user_data }));
        std::mem::forget(old);
    }
}
