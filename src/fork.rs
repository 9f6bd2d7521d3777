//! Fork safety: a child forked while other threads run conntls (BGSAVE's child, Valkey's
//! dual-channel replication child, Sentinel's script child, a Python worker forked after
//! it made connections) can use and free conntls objects without deadlock.
//!
//! A child inherits every lock as it was at the fork: one that another thread held then
//! stays held forever in the child. So every lock the library takes is taken inside a
//! `Section`, which holds the fork gate for reading, and a fork (the pthread_atfork
//! `prepare` handler) takes the gate for writing: while the process is copied no section
//! is in progress, and the child finds every lock free. Sections are short and never wait
//! for another thread inside (no condition waits, no callbacks: the log callback runs
//! outside them), so a fork waits at most for sections already running. They nest: only
//! a thread's outermost section takes the gate.
//!
//! What the child cannot have are the parent's other threads: a handshake pool's workers.
//! `generation()` changes in every child, so a pool knows it was made by a parent process.
//! (OpenSSL's own locks are OpenSSL's: a child forked while another thread is inside
//! OpenSSL inherits them as stock servers do.)

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, RwLock, RwLockReadGuard, RwLockWriteGuard};

static GATE: RwLock<()> = RwLock::new(());
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// How many sections this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The gate, held for writing by the forking thread from `prepare` to `parent`/`child`.
    static FORKING: RefCell<Option<RwLockWriteGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// A stretch of code that may take the library's locks; a fork waits until it ends.
struct Section {
    _gate: Option<RwLockReadGuard<'static, ()>>,
}

fn section() -> Section {
    register_handlers();
    let depth = DEPTH.with(|d| d.replace(d.get() + 1));
    let gate = (depth == 0).then(|| GATE.read().unwrap_or_else(|e| e.into_inner()));
    Section { _gate: gate }
}

impl Drop for Section {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
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
