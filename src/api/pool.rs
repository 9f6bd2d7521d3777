use std::ffi::{c_int, c_uint, c_void};
use std::time::Duration;

use crate::connection::Connection;
use crate::ffi::{self, boundary, CONN_TLS_BUSY, CONN_TLS_EINVAL, CONN_TLS_OK};
use crate::pool::{Pool, Refused};

/// Starts a handshake pool for servers without IO threads of their own: `threads` worker
/// threads drive submitted handshakes to completion, each waiting on the connections' fds
/// itself. At most `max_inflight` connections are inside the pool at once (submitted and
/// not yet collected); a handshake not done within `timeout_ms` fails ("handshake timed
/// out"), so a peer that stalls cannot hold a slot.
///
/// Ownership: the caller owns the pool and frees it with conn_tls_pool_free.
/// Threads: submit, collect and fd may be called from any thread.
/// Returns NULL when an argument is 0 (CONN_TLS_EINVAL) or a worker cannot start (its
/// thread, its poller or its eventfd: CONN_TLS_ERR, and no thread is left running); the
/// reason is recorded for the thread (conn_tls_thread_last_error) and logged.
#[no_mangle]
pub extern "C" fn conn_tls_pool_new(threads: c_uint, max_inflight: c_uint, timeout_ms: c_uint) -> *mut Pool {
    boundary!(
        std::ptr::null_mut(),
        ffi::made("conn_tls_pool_new", Pool::new(threads as usize, max_inflight as usize, Duration::from_millis(timeout_ms.into())))
    )
}

/// Hands connection `c` (made by conn_tls_new_server or conn_tls_new_client, handshake not
/// done) to the pool, tagged with `user`.
///
/// Ownership: on CONN_TLS_OK the pool owns `c` until conn_tls_pool_collect gives it back;
/// do not use it meanwhile. On CONN_TLS_BUSY, or CONN_TLS_EINVAL for NULL, the caller
/// still owns `c`.
/// Returns CONN_TLS_OK; CONN_TLS_BUSY when max_inflight connections are inside (nothing
/// taken: retry after collecting, or refuse the client); CONN_TLS_EINVAL for NULL, and
/// for a connection already inside a pool (submitted again before it was collected:
/// an event loop that still watches its fd), which changes nothing: the pool keeps it;
/// and CONN_TLS_EINVAL for a connection whose fd is the fd of another connection inside
/// this pool (nothing taken: two handshakes cannot share one socket), and in a forked
/// child (nothing taken: the pool's threads are the parent's).
///
/// While a connection is inside, every other conn_tls_* call on it is refused with
/// CONN_TLS_EINVAL ("the connection is inside a handshake pool ...") and changes nothing;
/// the calls that return a value rather than a status answer as for NULL (0, ""). Its
/// conn_tls_free is deferred to the collection (see conn_tls_pool_collect).
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pool_submit(pool: *mut Pool, c: *mut Connection, user: *mut c_void) -> c_int {
    boundary!(CONN_TLS_EINVAL, {
        let Some(pool) = ffi::handle_ref(pool) else { return ffi::fail(CONN_TLS_EINVAL, "pool_submit: pool is NULL") };
        if c.is_null() {
            return ffi::fail(CONN_TLS_EINVAL, "pool_submit: the connection handle is NULL");
        }
        if ffi::handle_ref(c).is_some_and(|conn| conn.lent().is_inside()) {
            return ffi::fail(CONN_TLS_EINVAL, "pool_submit: the connection is already inside the pool");
        }
        if let Err(e) = pool.check_process() {
            return ffi::fail(CONN_TLS_EINVAL, &format!("pool_submit: {e}"));
        }
        match pool.submit(Box::from_raw(c), user as usize) {
            Ok(()) => CONN_TLS_OK,
            // The caller gets its connection back, untouched.
            Err(Refused::Busy(conn)) => {
                let _ = Box::into_raw(conn);
                ffi::fail(CONN_TLS_BUSY, "pool_submit: the pool holds max_inflight connections")
            }
            Err(Refused::FdInside(conn)) => {
                let _ = Box::into_raw(conn);
                ffi::fail(CONN_TLS_EINVAL, "pool_submit: another connection on the same fd is inside the pool")
            }
        }
    })
}

/// A file descriptor that is readable exactly while finished connections wait to be
/// collected (an event loop woken by it always finds one; after the last is collected it
/// is no longer readable):
/// watch it for reading in the caller's event loop. It belongs to the pool (do not close
/// or read it). Returns -1 for NULL, and in a forked child. Does not change the pool.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pool_fd(pool: *const Pool) -> c_int {
    boundary!(-1, ffi::handle_ref(pool).filter(|pool| pool.check_process().is_ok()).map_or(-1, Pool::ready_fd))
}

/// Takes one finished connection out of the pool.
///
/// Returns 1 and writes the connection to `*c`, its `user` tag to `*user` and its
/// handshake status to `*status` (CONN_TLS_OK, or CONN_TLS_ERR with the reason in
/// conn_tls_last_error(*c), e.g. "handshake timed out"); the caller owns `*c` again.
/// A connection given to conn_tls_free while inside comes back freed: `*c` NULL,
/// `*status` CONN_TLS_EINVAL, `*user` its tag, whether its handshake had ended or not;
/// the library no longer uses its fd.
/// Returns 0 when none waits (outputs untouched), CONN_TLS_EINVAL for a NULL argument
/// and in a forked child (the pool's threads are the parent's).
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pool_collect(
    pool: *mut Pool,
    c: *mut *mut Connection,
    user: *mut *mut c_void,
    status: *mut c_int,
) -> c_int {
    boundary!(CONN_TLS_EINVAL, {
        let Some(pool) = ffi::handle_ref(pool) else { return ffi::fail(CONN_TLS_EINVAL, "pool_collect: pool is NULL") };
        if c.is_null() || user.is_null() || status.is_null() {
            return ffi::fail(CONN_TLS_EINVAL, "pool_collect: c, user or status is NULL");
        }
        if let Err(e) = pool.check_process() {
            return ffi::fail(CONN_TLS_EINVAL, &format!("pool_collect: {e}"));
        }
        match pool.collect() {
            Some(done) => {
                *status = done.result.as_ref().map_or_else(ffi::status, |()| CONN_TLS_OK);
                *user = done.user as *mut c_void;
                *c = done.conn.map_or(std::ptr::null_mut(), Box::into_raw);
                1
            }
            None => 0,
        }
    })
}

/// Stops the pool's threads and frees it; NULL is accepted. Connections still inside
/// (not collected) are freed; their fds stay open and remain the caller's. Blocks until
/// the threads have stopped (at most one handshake step each). In a forked child it
/// returns at once and frees nothing that the parent's threads held.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pool_free(pool: *mut Pool) {
    boundary!((), ffi::free_handle(pool))
}
