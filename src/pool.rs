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
//! A connection inside a pool belongs to a worker thread. The connection itself says so
//! (`Lent`, beside its TLS state), so the C boundary can refuse a call on it instead of
//! racing the worker, at the cost of one atomic load and no lock; and its free becomes a
//! request (`Lent::release`): the worker drops the handshake, and the collection frees the
//! connection and tells the caller that its fd is no longer used.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::c_int;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::connection::{Connection, Error, Tls};
use crate::fork::{self, Lock};

/// What comes back from the pool: the connection (None when it was released while
/// inside: freed here), the caller's tag, how it ended.
pub struct Finished {
    pub conn: Option<Box<Connection>>,
    pub user: usize,
    pub result: Result<(), Error>,
}

const OUTSIDE: u8 = 0;
const INSIDE: u8 = 1;
const RELEASED: u8 = 2;

/// Whether a connection is inside a pool, kept in the connection.
#[derive(Default)]
pub struct Lent {
    state: AtomicU8,
    /// The eventfd of the worker that drives it, for a release to wake.
    wake: AtomicI32,
}

impl Lent {
    /// Whether the connection is inside a pool (submitted, not yet collected).
    pub fn is_inside(&self) -> bool {
        self.state.load(Ordering::Acquire) != OUTSIDE
    }

    /// The connection's owner gives it up while it is inside a pool: true when it is (its
    /// worker drops the handshake, and the collection frees it), false when it is not
    /// inside any pool (the caller frees it).
    pub fn release(&self) -> bool {
        match self.state.compare_exchange(INSIDE, RELEASED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                signal_raw(self.wake.load(Ordering::Acquire));
                true
            }
            Err(state) => state == RELEASED,
        }
    }

    fn released(&self) -> bool {
        self.state.load(Ordering::Acquire) == RELEASED
    }
}

/// A connection lent to the pool: the pool's until `give_back`; freed if dropped (a pool
/// freed with connections inside frees them; their fds stay the caller's).
struct Lease(NonNull<Connection>);

// The lease moves between the submitting thread, a worker and the collecting thread; one
// of them has it at a time, and the owner's calls meanwhile only read `Lent`.
unsafe impl Send for Lease {}

impl Lease {
    fn new(conn: Box<Connection>, wake: c_int) -> Lease {
        let lent = conn.lent();
        lent.wake.store(wake, Ordering::Release);
        lent.state.store(INSIDE, Ordering::Release);
        Lease(NonNull::from(Box::leak(conn)))
    }

    fn conn(&self) -> &Connection {
        unsafe { self.0.as_ref() }
    }

    /// The TLS state, for the worker that holds the lease.
    fn tls(&mut self) -> &mut Tls {
        unsafe { self.conn().lent_tls() }
    }

    fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Back to the owner: None (and freed) when the owner released it meanwhile.
    fn give_back(self) -> Option<Box<Connection>> {
        let this = ManuallyDrop::new(self);
        let conn = unsafe { Box::from_raw(this.0.as_ptr()) };
        match conn.lent().state.swap(OUTSIDE, Ordering::AcqRel) {
            RELEASED => None,
            _ => Some(conn),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

struct Job {
    lease: Lease,
    user: usize,
    deadline: Instant,
}

/// A job that ended, waiting for its collection.
struct Done {
    lease: Lease,
    user: usize,
    result: Result<(), Error>,
}

struct Worker {
    incoming: Lock<Vec<Job>>,
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
    finished: Lock<VecDeque<Done>>,
    /// Semaphore eventfd: its count is the number of finished connections waiting.
    ready: OwnedFd,
    /// The connections inside (submitted, not yet collected), by fd: bounded in number,
    /// and one per fd.
    inside: Lock<HashSet<c_int>>,
    max_inside: usize,
    timeout: Duration,
    next_worker: AtomicUsize,
    stop: AtomicBool,
}

/// A handshake pool (conn_tls_pool): worker threads that drive submitted handshakes.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The fork generation of the process whose threads these are: a forked child has a
    /// copy of the pool but none of its workers.
    generation: u64,
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
    signal_raw(fd.as_raw_fd());
}

fn signal_raw(fd: c_int) {
    let one: u64 = 1;
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
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
            .map(|_| Ok(Worker { incoming: Lock::new(Vec::new()), wake: eventfd(0)?, epoll: epoll()? }))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::Fatal(format!("cannot start the handshake pool: {e}")))?;
        let shared = Arc::new(Shared {
            workers,
            finished: Lock::new(VecDeque::new()),
            ready: eventfd(libc::EFD_SEMAPHORE).map_err(|e| Error::Fatal(format!("cannot start the handshake pool: {e}")))?,
            inside: Lock::new(HashSet::new()),
            max_inside: max_inflight,
            timeout,
            next_worker: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        // Built up thread by thread: on a failure, dropping the pool stops and joins the
        // threads already running.
        let mut pool = Pool { shared, threads: Vec::with_capacity(threads), generation: fork::generation() };
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

    /// Err(Invalid) in a process forked from the one that made the pool: its workers are
    /// not here, so nothing submitted would be driven, and the queues are the parent's.
    pub fn check_process(&self) -> Result<(), Error> {
        if self.generation != fork::generation() {
            return Err(Error::Invalid("the pool's threads are in the parent process: a forked child cannot use it".into()));
        }
        Ok(())
    }

    /// Takes `conn` and drives its handshake on a worker thread. (A connection already
    /// inside a pool is the C boundary's to refuse, by `Lent::is_inside`, before it makes a
    /// Box of the handle: a second Box of a connection a worker drives would alias it.)
    pub fn submit(&self, conn: Box<Connection>, user: usize) -> Result<(), Refused> {
        let s = &self.shared;
        let Some(fd) = conn.tls().map(Tls::fd) else { return Err(Refused::FdInside(conn)) };
        {
            let mut inside_here = s.inside.lock();
            if inside_here.len() >= s.max_inside {
                return Err(Refused::Busy(conn));
            }
            if !inside_here.insert(fd) {
                return Err(Refused::FdInside(conn));
            }
        }
        let index = s.next_worker.fetch_add(1, Ordering::Relaxed) % s.workers.len();
        let worker = &s.workers[index];
        let job = Job { lease: Lease::new(conn, worker.wake.as_raw_fd()), user, deadline: Instant::now() + s.timeout };
        worker.incoming.lock().push(job);
        signal(&worker.wake);
        Ok(())
    }

    /// One finished connection, if any waits; one released while inside is freed here and
    /// comes back as Err(Invalid), whenever its handshake ended.
    pub fn collect(&self) -> Option<Finished> {
        let s = &self.shared;
        let Done { mut lease, user, result } = {
            let mut queue = s.finished.lock();
            let done = queue.pop_front()?;
            drain(&s.ready);
            done
        };
        s.inside.lock().remove(&lease.tls().fd());
        Some(match lease.give_back() {
            Some(conn) => Finished { conn: Some(conn), user, result },
            None => Finished { conn: None, user, result: Err(Error::Invalid("released while inside the pool".into())) },
        })
    }

    pub fn ready_fd(&self) -> c_int {
        self.shared.ready.as_raw_fd()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.check_process().is_err() {
            // A forked child: the threads to stop and join do not exist here (joining one
            // would wait forever), and the eventfds are shared with the parent's workers.
            // What they hold stays as the fork copied it.
            for thread in self.threads.drain(..) {
                std::mem::forget(thread);
            }
            return;
        }
        self.shared.stop.store(true, Ordering::Release);
        for worker in &self.shared.workers {
            signal(&worker.wake);
        }
        // Connections still inside are freed with the workers' jobs and the shared state
        // (their leases); their fds stay open.
        fork::blocking(|| {
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        });
    }
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
        // Handshake steps go into OpenSSL: a fork waits for them (`crate::fork`).
        let _section = fork::section();
        let mut to_step: Vec<usize> = Vec::new();
        for event in &events[..n.max(0) as usize] {
            if event.u64 == WAKE {
                drain(&me.wake);
                let incoming = std::mem::take(&mut *me.incoming.lock());
                for mut job in incoming {
                    let key = job.lease.key();
                    watch(epoll, job.lease.tls().fd(), libc::EPOLL_CTL_ADD, libc::EPOLLIN as u32, key as u64);
                    jobs.insert(key, job);
                    // The first step needs no readiness: a server sends nothing first, but
                    // a client (or a hello already received) can start now.
                    to_step.push(key);
                }
                // A wake may be a release: that handshake ends here, unstepped.
                let gone: Vec<usize> = jobs.iter().filter(|(_, job)| job.lease.conn().lent().released()).map(|(key, _)| *key).collect();
                for key in gone {
                    finish(shared, epoll, &mut jobs, key, Err(Error::Invalid("released while inside the pool".into())));
                }
            } else {
                to_step.push(event.u64 as usize);
            }
        }
        for key in to_step {
            let Some(job) = jobs.get_mut(&key) else { continue };
            let tls = job.lease.tls();
            let fd = tls.fd();
            match tls.handshake() {
                Err(Error::WantRead) => watch(epoll, fd, libc::EPOLL_CTL_MOD, libc::EPOLLIN as u32, key as u64),
                Err(Error::WantWrite) => watch(epoll, fd, libc::EPOLL_CTL_MOD, libc::EPOLLOUT as u32, key as u64),
                result => finish(shared, epoll, &mut jobs, key, result),
            }
        }
        let now = Instant::now();
        let expired: Vec<usize> = jobs.iter().filter(|(_, j)| j.deadline <= now).map(|(key, _)| *key).collect();
        for key in expired {
            if let Some(job) = jobs.get_mut(&key) {
                let error = job.lease.tls().die(format!("handshake timed out after {} ms (the peer stalled)", shared.timeout.as_millis()));
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
    let tls = job.lease.tls();
    unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, tls.fd(), std::ptr::null_mut()) };
    if let Err(e) = &result {
        tls.note_error(e);
    }
    // Queued and counted under one lock: a collect in between would otherwise take the
    // item and leave the count behind, and the fd would stay readable with nothing to
    // collect (an event loop watching it then never sleeps).
    let mut queue = shared.finished.lock();
    queue.push_back(Done { lease: job.lease, user: job.user, result });
    signal(&shared.ready);
}