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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, RwLock, RwLockReadGuard, RwLockWriteGuard};

static GATE: RwLock<()> = RwLock::new(());
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// How many sections this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The gate, held for reading by this thread's outermost section.
    static READING: RefCell<Option<RwLockReadGuard<'static, ()>>> = const { RefCell::new(None) };
    /// The gate, held for writing by the forking thread from `prepare` to `parent`/`child`.
    static FORKING: RefCell<Option<RwLockWriteGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// A stretch of code that may take the library's or OpenSSL's locks; a fork waits until
/// it ends. Belongs to its thread.
pub struct Section {
    _thread_bound: PhantomData<*const ()>,
}

pub fn section() -> Section {
    register_handlers();
    if DEPTH.with(|d| d.replace(d.get() + 1)) == 0 {
        take_gate();
    }
    Section { _thread_bound: PhantomData }
}

fn take_gate() {
    let guard = GATE.read().unwrap_or_else(|e| e.into_inner());
    READING.with(|r| *r.borrow_mut() = Some(guard));
}

impl Drop for Section {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth == 0 {
            READING.with(|r| r.borrow_mut().take());
            crate::logging::deliver_deferred();
        }
    }
}

/// Whether this thread is inside a section (messages logged now are delivered after it).
pub fn in_section() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Runs `wait`, which may wait for another thread or the network (a blocking socket), with
/// this thread's section suspended, so a fork meanwhile need not wait for it. Only the
/// section of a call is suspended: inside a library lock, or in a thread that is forking,
/// `wait` runs as it is (those never wait long).
pub fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    if DEPTH.with(Cell::get) != 1 || !READING.with(|r| r.borrow().is_some()) {
        return wait();
    }
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            take_gate();
            DEPTH.with(|d| d.set(1));
        }
    }
    DEPTH.with(|d| d.set(0));
    READING.with(|r| r.borrow_mut().take());
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
    GENERATION.load(Ordering::Acquire)
}

fn register_handlers() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // Fails only for lack of memory; then forks are as unsafe as without conntls.
        let _ = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

extern "C" fn prepare() {
    let gate = GATE.write().unwrap_or_else(|e| e.into_inner());
    FORKING.with(|f| *f.borrow_mut() = Some(gate));
    // The handlers below may use code that opens sections: they must not wait for the
    // gate this thread holds.
    DEPTH.with(|d| d.set(d.get() + 1));
}

extern "C" fn parent() {
    done_forking();
}

extern "C" fn child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    crate::logging::after_fork_in_child();
    done_forking();
}

fn done_forking() {
    DEPTH.with(|d| d.set(d.get() - 1));
    FORKING.with(|f| f.borrow_mut().take());
}
