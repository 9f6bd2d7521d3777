//! The handshake pool, for servers without IO threads: worker threads that drive submitted
//! handshakes to completion, each waiting on its connections' fds with its own epoll.
//!
//! A bound on connections inside the pool (submitted and not yet collected) keeps a
//! connection storm from queueing without limit (valkey #4308): `submit` refuses when
//! full. Every handshake has a deadline, so a peer that stalls (a slowloris, a client that
//! never sends its hello) fails with a clear error instead of holding a slot forever.
//! Finished connections wait in a queue; an eventfd is readable while any wait, for the
//! caller's event loop.
//!
//! A connection inside a pool belongs to a worker thread. Every connection inside any pool
//! is in one process-wide registry (`INSIDE`), so the C boundary can refuse a call on one
//! (`is_inside`) instead of racing the worker, and turn its free into a request (`release`):
//! the worker drops the handshake, and the collection frees the connection and tells the
//! caller that its fd is no longer used.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::connection::{Connection, Error};

/// What comes back from the pool: the connection (None when it was released while
/// inside: freed here), the caller's tag, how it ended.
pub struct Finished {
    pub conn: Option<Box<Connection>>,
    pub user: usize,
    pub result: Result<(), Error>,
}

/// A connection inside a pool: whose worker drives it, and whether its free was asked for.
struct Inside {
    pool: Weak<Shared>,
    worker: usize,
    released: bool,
}

/// Every connection inside any pool, by address. COUNT mirrors its size, so that calls on
/// connections cost one atomic load while no pool holds anything.
static INSIDE: Mutex<BTreeMap<usize, Inside>> = Mutex::new(BTreeMap::new());
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn inside() -> std::sync::MutexGuard<'static, BTreeMap<usize, Inside>> {
    INSIDE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the connection at `address` is inside a pool (submitted, not yet collected).
/// Asked by address, before any reference is made of a handle: a worker may be driving it.
pub fn is_inside(address: usize) -> bool {
    COUNT.load(Ordering::Acquire) != 0 && inside().contains_key(&address)
}

/// The connection's owner gives it up while it is inside a pool: true when it is (its
/// worker drops the handshake, and the collection frees it), false when it is not inside
/// any pool (the caller frees it).
pub fn release(address: usize) -> bool {
    let mut map = inside();
    let Some(entry) = map.get_mut(&address) else { return false };
    entry.released = true;
    if let Some(shared) = entry.pool.upgrade() {
        signal(&shared.workers[entry.worker].wake);
    }
    true
}

fn released(address: usize) -> bool {
    inside().get(&address).is_some_and(|entry| entry.released)
}

struct Job {
    conn: Box<Connection>,
    user: usize,
    deadline: Instant,
}

struct Worker {
    incoming: Mutex<Vec<Job>>,
    /// eventfd that wakes the worker when jobs arrive (or on stop).
    wake: OwnedFd,
    /// The worker's poller, made with the pool: a worker that could not make one would
    /// take jobs it never drives.
    epoll: OwnedFd,
}

struct Shared {
    workers: Vec<Worker>,
    /// Finished connections, and `ready`'s count beside them: both change under this lock
    /// only, so the fd is readable exactly while the queue holds something.
    finished: Mutex<VecDeque<Finished>>,
    /// Semaphore eventfd: its count is the number of finished connections waiting.
    ready: OwnedFd,
    /// The connections inside (submitted, not yet collected), by fd: bounded in number,
    /// and one per fd.
    inside: Mutex<HashSet<c_int>>,
    max_inside: usize,
    timeout: Duration,
    next_worker: AtomicUsize,
    stop: AtomicBool,
}

/// A handshake pool (conn_tls_pool): worker threads that drive submitted handshakes.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Why `submit` did not take a connection; the caller keeps it.
pub enum Refused {
    /// The pool holds max_inflight connections already.
    Busy(Box<Connection>),
    /// Another connection on the same fd is inside (an fd closed and reused while its
    /// first connection's handshake runs): the two would share one socket.
    FdInside(Box<Connection>),
}

fn eventfd(flags: c_int) -> Result<OwnedFd, String> {
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC | flags) };
    if fd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

fn epoll() -> Result<OwnedFd, String> {
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(format!("epoll_create1: {}", std::io::Error::last_os_error()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn drain(fd: &OwnedFd) -> bool {
    let mut value: u64 = 0;
    unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) == 8 }
}

impl Pool {
    /// Err(Invalid) for a zero argument, Err(Fatal) when a worker's eventfd, its poller or
    /// its thread cannot be made (threads already started are stopped again).
    pub fn new(threads: usize, max_inflight: usize, timeout: Duration) -> Result<Pool, Error> {
        if threads == 0 || max_inflight == 0 || timeout.is_zero() {
            return Err(Error::Invalid("threads, max_inflight and timeout_ms must all be at least 1".into()));
        }
        let workers = (0..threads)
            .map(|_| Ok(Worker { incoming: Mutex::new(Vec::new()), wake: eventfd(0)?, epoll: epoll()? }))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::Fatal(format!("cannot start the handshake pool: {e}")))?;
        let shared = Arc::new(Shared {
            workers,
            finished: Mutex::new(VecDeque::new()),
            ready: eventfd(libc::EFD_SEMAPHORE).map_err(|e| Error::Fatal(format!("cannot start the handshake pool: {e}")))?,
            inside: Mutex::new(HashSet::new()),
            max_inside: max_inflight,
            timeout,
            next_worker: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        // Built up thread by thread: on a failure, dropping the pool stops and joins the
        // threads already running.
        let mut pool = Pool { shared, threads: Vec::with_capacity(threads) };
        for i in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let thread = std::thread::Builder::new()
                .name(format!("conntls-hs-{i}"))
                .spawn(move || run_worker(&shared, i))
                .map_err(|e| Error::Fatal(format!("cannot start a handshake pool thread: {e}")))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Takes `conn` and drives its handshake on a worker thread. (A connection already
    /// inside a pool is the C boundary's to refuse, by `is_inside`, before it makes a Box
    /// of the handle: a second Box of a connection a worker drives would alias it.)
    pub fn submit(&self, conn: Box<Connection>, user: usize) -> Result<(), Refused> {
        let s = &self.shared;
        {
            let mut inside_here = s.inside.lock().unwrap_or_else(|e| e.into_inner());
            if inside_here.len() >= s.max_inside {
                return Err(Refused::Busy(conn));
            }
            if !inside_here.insert(conn.fd()) {
                return Err(Refused::FdInside(conn));
            }
        }
        let index = s.next_worker.fetch_add(1, Ordering::Relaxed) % s.workers.len();
        {
            let mut map = inside();
            map.insert(address(&conn), Inside { pool: Arc::downgrade(&self.shared), worker: index, released: false });
            COUNT.store(map.len(), Ordering::Release);
        }
        let worker = &s.workers[index];
        let job = Job { conn, user, deadline: Instant::now() + s.timeout };
        worker.incoming.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        signal(&worker.wake);
        Ok(())
    }

    /// One finished connection, if any waits; one released while inside is freed here and
    /// comes back as Err(Invalid), whenever its handshake ended.
    pub fn collect(&self) -> Option<Finished> {
        let s = &self.shared;
        let mut finished = {
            let mut queue = s.finished.lock().unwrap_or_else(|e| e.into_inner());
            let finished = queue.pop_front()?;
            drain(&s.ready);
            finished
        };
        let released = finished.conn.as_deref().is_some_and(|conn| {
            s.inside.lock().unwrap_or_else(|e| e.into_inner()).remove(&conn.fd());
            let mut map = inside();
            let entry = map.remove(&address(conn));
            COUNT.store(map.len(), Ordering::Release);
            entry.is_some_and(|entry| entry.released)
        });
        if released {
            finished.conn = None;
            finished.result = Err(Error::Invalid("released while inside the pool".into()));
        }
        Some(finished)
    }

    pub fn ready_fd(&self) -> c_int {
        self.shared.ready.as_raw_fd()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for worker in &self.shared.workers {
            signal(&worker.wake);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        // Connections still inside are freed with the shared state (their fds stay open):
        // their addresses leave the registry, where a later allocation could reuse them.
        let mut map = inside();
        map.retain(|_, entry| !std::ptr::eq(entry.pool.as_ptr(), Arc::as_ptr(&self.shared)));
        COUNT.store(map.len(), Ordering::Release);
    }
}

fn address(conn: &Connection) -> usize {
    conn as *const Connection as usize
}

/// A worker: its own epoll over the fds of the handshakes it drives. Jobs are keyed by
/// their connection's address (the epoll tag), not by fd: the pool refuses a second
/// connection on an fd that is inside, and the key does not depend on that.
fn run_worker(shared: &Shared, index: usize) {
    let me = &shared.workers[index];
    let epoll = &me.epoll;
    const WAKE: u64 = u64::MAX;
    watch(epoll, me.wake.as_raw_fd(), libc::EPOLL_CTL_ADD, libc::EPOLLIN as u32, WAKE);
    let mut jobs: HashMap<usize, Job> = HashMap::new();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    while !shared.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let next_deadline = jobs.values().map(|j| j.deadline).min();
        let wait_ms = next_deadline.map_or(1000, |d| d.saturating_duration_since(now).as_millis().min(1000) as c_int + 1);
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), events.as_mut_ptr(), events.len() as c_int, wait_ms) };
        let mut to_step: Vec<usize> = Vec::new();
        for event in &events[..n.max(0) as usize] {
            if event.u64 == WAKE {
                drain(&me.wake);
                for job in std::mem::take(&mut *me.incoming.lock().unwrap_or_else(|e| e.into_inner())) {
                    let key = address(&job.conn);
                    watch(epoll, job.conn.fd(), libc::EPOLL_CTL_ADD, libc::EPOLLIN as u32, key as u64);
                    jobs.insert(key, job);
                    // The first step needs no readiness: a server sends nothing first, but
                    // a client (or a hello already received) can start now.
                    to_step.push(key);
                }
                // A wake may be a release: that handshake ends here, unstepped.
                let gone: Vec<usize> = jobs.keys().copied().filter(|key| released(*key)).collect();
                for key in gone {
                    finish(shared, epoll, &mut jobs, key, Err(Error::Invalid("released while inside the pool".into())));
                }
            } else {
                to_step.push(event.u64 as usize);
            }
        }
        for key in to_step {
            let Some(job) = jobs.get_mut(&key) else { continue };
            let fd = job.conn.fd();
            match job.conn.handshake() {
                Err(Error::WantRead) => watch(epoll, fd, libc::EPOLL_CTL_MOD, libc::EPOLLIN as u32, key as u64),
                Err(Error::WantWrite) => watch(epoll, fd, libc::EPOLL_CTL_MOD, libc::EPOLLOUT as u32, key as u64),
                result => finish(shared, epoll, &mut jobs, key, result),
            }
        }
        let now = Instant::now();
        let expired: Vec<usize> = jobs.iter().filter(|(_, j)| j.deadline <= now).map(|(key, _)| *key).collect();
        for key in expired {
            if let Some(job) = jobs.get_mut(&key) {
                let error = job.conn.die(format!("handshake timed out after {} ms (the peer stalled)", shared.timeout.as_millis()));
                finish(shared, epoll, &mut jobs, key, Err(error));
            }
        }
    }
}

fn watch(epoll: &OwnedFd, fd: c_int, op: c_int, events: u32, tag: u64) {
    let mut event = libc::epoll_event { events, u64: tag };
    unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut event) };
}

fn finish(shared: &Shared, epoll: &OwnedFd, jobs: &mut HashMap<usize, Job>, key: usize, result: Result<(), Error>) {
    let Some(mut job) = jobs.remove(&key) else { return };
    unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, job.conn.fd(), std::ptr::null_mut()) };
    if let Err(e) = &result {
        job.conn.note_error(e);
    }
    // Queued and counted under one lock: a collect in between would otherwise take the
    // item and leave the count behind, and the fd would stay readable with nothing to
    // collect (an event loop watching it then never sleeps).
    let mut queue = shared.finished.lock().unwrap_or_else(|e| e.into_inner());
    queue.push_back(Finished { conn: Some(job.conn), user: job.user, result });
    signal(&shared.ready);
}