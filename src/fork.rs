//! Fork safety: a child forked while other threads run conntls (BGSAVE's child, Valkey's
//! dual-channel replication child, Sentinel's script child, a Python worker forked after
//! it made connections) can use and free conntls objects without deadlock.
//!
//! A child inherits every lock as it was at the fork: one that another thread held then
//! stays held forever in the child. OpenSSL takes locks of its own in most calls (the
//! ex_data lock in every SSL_new and SSL_free, a context's session lock when a ticket
//! arrives, its providers' stores in a reload), so a child forked while another thread is
//! inside OpenSSL could wait forever in its first SSL_new. So every call into the library
//! (the C boundary, a pool worker's handshake steps) and every lock the library takes runs
//! inside a `Section`, which holds the fork gate for reading, and a fork (the
//! pthread_atfork `prepare` handler) takes the gate for writing: while the process is
//! copied no section is in progress, and the child finds every lock free, OpenSSL's
//! included. Sections never wait for another thread inside: what waits (a blocking
//! socket's read or write, a pool's join, a log callback swap) runs `blocking`, with the
//! thread's section suspended, and the log callback runs after the section ends (the
//! caller's code may wait for a thread that is forking). So a fork waits at most for
//! sections already running. They nest: only a thread's outermost section takes the gate.
//!
//! What the child cannot have are the parent's other threads: a handshake pool's workers.
//! `generation()` changes in every child, so a pool knows it was made by a parent process.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

/// The gate: how many threads are inside a section, and whether a fork waits for them to
/// leave. A reader counts itself in, then looks for a fork; a fork raises its flag, then
/// looks at the count: with both sequentially consistent, one of them sees the other.
/// (Not an RwLock: its guard would have to live in thread-local storage, whose every
/// access from a shared library is a call; this costs two atomic operations per section.)
static READERS: AtomicUsize = AtomicUsize::new(0);
static FORK_PENDING: AtomicBool = AtomicBool::new(false);
/// One fork at a time passes `prepare` (held until its `parent` or `child`).
static FORKER: Mutex<()> = Mutex::new(());
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// This thread's part: one thread-local access per section boundary.
struct ThreadState {
    /// How many sections this thread is inside.
    depth: Cell<u32>,
    /// Whether its outermost section counted itself in the gate (a forking thread's
    /// handlers do not).
    counted: Cell<bool>,
    /// Whether messages were logged inside the current section (`crate::logging`).
    deferred: Cell<bool>,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState { depth: Cell::new(0), counted: Cell::new(false), deferred: Cell::new(false) }
    };
    /// FORKER, held by the forking thread from `prepare` to `parent`/`child`.
    static FORKING: RefCell<Option<MutexGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// A stretch of code that may take the library's or OpenSSL's locks; a fork waits until
/// it ends. Belongs to its thread.
pub struct Section {
    _thread_bound: PhantomData<*const ()>,
}

pub fn section() -> Section {
    register_handlers();
    THREAD.with(|t| {
        let depth = t.depth.get();
        t.depth.set(depth + 1);
        if depth == 0 {
            enter_gate();
            t.counted.set(true);
        }
    });
    Section { _thread_bound: PhantomData }
}

fn enter_gate() {
    loop {
        READERS.fetch_add(1, SeqCst);
        if !FORK_PENDING.load(SeqCst) {
            return;
        }
        READERS.fetch_sub(1, SeqCst);
        while FORK_PENDING.load(Acquire) {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

fn leave_gate() {
    READERS.fetch_sub(1, Release);
}

impl Drop for Section {
    fn drop(&mut self) {
        let deliver = THREAD.with(|t| {
            let depth = t.depth.get() - 1;
            t.depth.set(depth);
            if depth > 0 {
                return false;
            }
            if t.counted.replace(false) {
                leave_gate();
            }
            t.deferred.replace(false)
        });
        if deliver {
            crate::logging::deliver_deferred();
        }
    }
}

/// Notes a message logged inside a section and returns true, or returns false outside
/// any (then it is delivered now).
pub fn defer_log() -> bool {
    THREAD.with(|t| {
        let inside = t.depth.get() > 0;
        if inside {
            t.deferred.set(true);
        }
        inside
    })
}

/// Runs `wait`, which may wait for another thread or the network (a blocking socket), with
/// this thread's section suspended, so a fork meanwhile need not wait for it. Only the
/// section of a call is suspended: inside a library lock, or in a thread that is forking,
/// `wait` runs as it is (those never wait long).
pub fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    let suspend = THREAD.with(|t| t.depth.get() == 1 && t.counted.get());
    if !suspend {
        return wait();
    }
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            enter_gate();
        }
    }
    leave_gate();
    let _resume = Resume;
    wait()
}

/// A mutex held only inside a section: the library's every lock.
pub struct Lock<T> {
    mutex: Mutex<T>,
}

/// A held `Lock`: the guard drops before the section (fields drop in order).
pub struct Held<'a, T> {
    guard: MutexGuard<'a, T>,
    _section: Section,
}

impl<T> Lock<T> {
    pub const fn new(value: T) -> Lock<T> {
        Lock { mutex: Mutex::new(value) }
    }

    pub fn lock(&self) -> Held<'_, T> {
        let section = section();
        Held { guard: self.mutex.lock().unwrap_or_else(|e| e.into_inner()), _section: section }
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Lock<T> {
        Lock::new(T::default())
    }
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// Changes in every forked child: what was made under another generation belongs to an
/// ancestor process, with threads this process does not have.
pub fn generation() -> u64 {
    GENERATION.load(Acquire)
}

fn register_handlers() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // Fails only for lack of memory; then forks are as unsafe as without conntls.
        let _ = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

extern "C" fn prepare() {
    let forker = FORKER.lock().unwrap_or_else(|e| e.into_inner());
    FORKING.with(|f| *f.borrow_mut() = Some(forker));
    FORK_PENDING.store(true, SeqCst);
    while READERS.load(SeqCst) != 0 {
        std::thread::sleep(Duration::from_micros(20));
    }
    // The handlers below may use code that opens sections: they must not wait for the
    // gate this thread closed.
    THREAD.with(|t| t.depth.set(t.depth.get() + 1));
}

extern "C" fn parent() {
    done_forking();
}

extern "C" fn child() {
    // Readers that counted themselves in while the process was copied, and left again
    // when they saw the fork, are threads the child does not have.
    READERS.store(0, SeqCst);
    GENERATION.fetch_add(1, AcqRel);
    crate::logging::after_fork_in_child();
    done_forking();
}

fn done_forking() {
    THREAD.with(|t| t.depth.set(t.depth.get() - 1));
    FORK_PENDING.store(false, SeqCst);
    FORKING.with(|f| f.borrow_mut().take());
}
