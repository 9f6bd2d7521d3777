use std::ffi::{c_char, c_int, c_uint, c_void};
use std::ptr::NonNull;

use libc::{iovec, ssize_t};

use crate::connection::{Connection, Error, Tls};
use crate::context::Context;
use crate::writev::{BadPiece, Piece};
use crate::ffi::{self, boundary, CONN_TLS_EINVAL, CONN_TLS_OK};

/// The message of a call on a NULL connection handle.
const NULL_CONNECTION: &str = "the connection handle is NULL";
/// The message of a call on a connection a handshake pool holds.
const IN_POOL: &str = "the connection is inside a handshake pool until conn_tls_pool_collect returns it";

/// Runs `f` on the connection behind `c`; the status of its result, recording a failure's
/// message for conn_tls_last_error and conn_tls_thread_last_error. A connection inside a
/// pool is refused untouched: the pool's thread may be driving it.
unsafe fn call<T>(c: *mut Connection, f: impl FnOnce(&mut Tls) -> Result<T, Error>) -> Result<T, c_int> {
    // Asked through a shared reference first: a worker may be driving a connection that
    // is inside a pool, and only its own flag may be read then.
    match ffi::handle_ref(c) {
        None => return Err(ffi::fail(CONN_TLS_EINVAL, NULL_CONNECTION)),
        Some(conn) if conn.lent().is_inside() => return Err(ffi::fail(CONN_TLS_EINVAL, IN_POOL)),
        Some(_) => {}
    }
    let Some(tls) = ffi::handle_mut(c).and_then(Connection::tls_mut) else { return Err(ffi::fail(CONN_TLS_EINVAL, IN_POOL)) };
    f(tls).map_err(|e| {
        tls.note_error(&e);
        ffi::failed(&e)
    })
}

/// The connection behind `c` for a call that only reads it: None for NULL and for a
/// connection inside a pool (the call then answers as for NULL).
unsafe fn outside_pool<'a>(c: *const Connection) -> Option<&'a Tls> {
    ffi::handle_ref(c).and_then(Connection::tls)
}

unsafe fn status_of(c: *mut Connection, f: impl FnOnce(&mut Tls) -> Result<(), Error>) -> c_int {
    call(c, f).map_or_else(|status| status, |()| CONN_TLS_OK)
}

unsafe fn count_of(c: *mut Connection, f: impl FnOnce(&mut Tls) -> Result<usize, Error>) -> ssize_t {
    call(c, f).map_or_else(|status| status as ssize_t, |n| n as ssize_t)
}

/// The context behind a constructor's `ctx` argument.
unsafe fn context<'a>(ctx: *mut Context) -> Result<&'a Context, Error> {
    ffi::handle_ref(ctx).ok_or_else(|| Error::Invalid("the context handle is NULL".into()))
}

/// Makes a server-side connection on `fd`, an accepted, connected, non-blocking stream
/// socket. It uses the context's live generation until freed, and gets the context's
/// tcp-user-timeout / tcp-keepalive if set (server connections are otherwise left as the
/// socket is).
///
/// Ownership: the fd stays the caller's; the library reads, writes and sets socket options
/// on it, never closes it. The caller owns the result and frees it with conn_tls_free,
/// before closing the fd.
/// Threads: any thread; the context may be in use by other threads.
/// Returns NULL when `ctx` is NULL, `fd` is negative or not an open stream socket, the
/// context has no cert-file/key-file, the context's tcp-user-timeout / tcp-keepalive cannot
/// be set on `fd`, or memory runs out. The reason is recorded for the thread
/// (conn_tls_thread_last_status: CONN_TLS_EINVAL for a bad argument, CONN_TLS_ERR
/// otherwise; conn_tls_thread_last_error: the message) and logged as a warning.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_new_server(ctx: *mut Context, fd: c_int) -> *mut Connection {
    boundary!(std::ptr::null_mut(), ffi::made("conn_tls_new_server", context(ctx).and_then(|ctx| Tls::new_server(ctx, fd).map(Connection::new))))
}

/// Makes a client-side connection on `fd`, a connected (or connecting) non-blocking stream
/// socket. The peer's chain is always verified against ca-cert-file / ca-cert-dir (the
/// system's trust store when neither is set). `server_name` (copied) is sent as SNI and
/// the certificate must match it (an IP address is matched against the certificate's IP
/// entries and not sent as SNI); NULL sends no SNI and checks the chain only. With the
/// context option verify-server-name no, server_name is only sent as SNI (what Valkey's
/// replication and cluster links do) and the chain alone is checked.
///
/// Resumption: the context keeps the newest session it got for each server_name (NULL
/// counts as one name) and offers it here.
///
/// Liveness defaults for client connections on TCP sockets, where the context options do
/// not set them: keepalive after 15 s idle (probes every 5 s, 3 of them) and
/// TCP_USER_TIMEOUT 30000 ms. The user timeout also fails a server that is alive but does
/// not read for 30 s; raise it with conn_tls_set_user_timeout for peers that may
/// legitimately stall longer, or set 0 to turn it off. This default user timeout follows
/// keepalive the caller chooses (the tcp-keepalive option, conn_tls_set_keepalive), so
/// that keepalive keeps its promise (see conn_tls_set_keepalive).
///
/// Ownership, threads as conn_tls_new_server.
/// Returns NULL when `ctx` is NULL, `fd` is negative or not an open stream socket,
/// `server_name` is not UTF-8 or not a usable host name, a socket option cannot be set on
/// `fd` (TCP_USER_TIMEOUT, keepalive), or memory runs out. The reason is recorded for the
/// thread and logged, as for conn_tls_new_server.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_new_client(ctx: *mut Context, fd: c_int, server_name: *const c_char) -> *mut Connection {
    boundary!(std::ptr::null_mut(), {
        let result = context(ctx).and_then(|ctx| {
            let name = ffi::str_arg(server_name, "server_name").map_err(Error::Invalid)?;
            Tls::new_client(ctx, fd, name).map(Connection::new)
        });
        ffi::made("conn_tls_new_client", result)
    })
}

/// Runs one handshake step.
///
/// Threads: any thread; each step may run on a different thread, ordered by the caller's
/// own hand-off (a mutex, a queue).
/// Returns CONN_TLS_OK when the handshake is done and its last flight is on the socket,
/// CONN_TLS_WANT_READ / CONN_TLS_WANT_WRITE (call again when the fd is readable /
/// writable), CONN_TLS_ERR (conn_tls_last_error says why: the peer's certificate, a
/// protocol error, a timeout...), CONN_TLS_EINVAL for NULL.
/// A server connection whose client closed its side before the server's first flight
/// (a client that gave up while its connection waited to be accepted) fails at once with
/// CONN_TLS_ERR, "the client closed the connection before its handshake began", without
/// the key exchange or signature being computed: such a client can never finish.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_handshake(c: *mut Connection) -> c_int {
    boundary!(CONN_TLS_EINVAL, status_of(c, Tls::handshake))
}

/// Reads decrypted bytes into `buf` (at most `len`; a `len` above INT_MAX reads at most
/// INT_MAX bytes, as read(2) clamps). Drives the handshake first if it is not done.
///
/// Returns the number of bytes read (> 0); 0 when the peer closed the stream (close_notify
/// or EOF); CONN_TLS_WANT_READ / CONN_TLS_WANT_WRITE; CONN_TLS_ERR; CONN_TLS_EINVAL for a
/// NULL handle, a NULL `buf` or `len` 0. When conn_tls_pending_read(c) > 0 afterwards,
/// decrypted bytes wait: read again without waiting for the fd. A read may make the
/// library send (a KeyUpdate answer): when conn_tls_pending_write(c) > 0, keep write
/// interest.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_read(c: *mut Connection, buf: *mut c_void, len: usize) -> ssize_t {
    boundary!(data_path, CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        if buf.is_null() {
            return Err(Error::Invalid("read: buf is NULL".into()));
        }
        // Clamped before the slice is made: OpenSSL reads at most INT_MAX per call anyway.
        let len = len.min(c_int::MAX as usize);
        conn.read(std::slice::from_raw_parts_mut(buf.cast(), len))
    }))
}

/// conn_tls_writev with one buffer. `buf` may be NULL when `len` is 0. A `len` above
/// SSIZE_MAX is CONN_TLS_EINVAL, as writev(2) refuses it: nothing is read or written.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_write(c: *mut Connection, buf: *const c_void, len: usize) -> ssize_t {
    boundary!(data_path, CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        if buf.is_null() && len > 0 {
            return Err(Error::Invalid("write: buf is NULL and len is not 0".into()));
        }
        if len > isize::MAX as usize {
            return Err(Error::Invalid("write: len is above SSIZE_MAX".into()));
        }
        let data: &[u8] = if len == 0 { &[] } else { std::slice::from_raw_parts(buf.cast(), len) };
        conn.writev(std::iter::once(Ok(data)))
    }))
}

/// Writes the concatenation of `iov[0..iovcnt]`. Drives the handshake first if it is not
/// done.
///
/// Returns n > 0: the first n bytes are committed. The library owns them and delivers them
/// in order, before any byte of a later call, as long as the caller calls conn_tls_flush
/// (or writes again) when the fd is writable; conn_tls_pending_write(c) > 0 says some are
/// not on the socket yet, so keep write interest.
/// Returns CONN_TLS_WANT_WRITE / CONN_TLS_WANT_READ: nothing of this call was committed,
/// and the next call may pass any data at all (OpenSSL's write-retry rule is the library's
/// business: no sequence of calls can produce "bad length" or "bad write retry").
/// Returns 0 when there is nothing to write (iovcnt 0 or all lengths 0); committed bytes
/// still move along. CONN_TLS_ERR: the connection is dead. CONN_TLS_EINVAL: NULL handle,
/// what writev(2) refuses: iovcnt < 0 or > IOV_MAX, a NULL iov with iovcnt > 0, an entry
/// with a NULL base and a non-zero length, an entry longer than SSIZE_MAX, or lengths
/// adding up to more than SSIZE_MAX; nothing was read from the buffers, written or
/// flushed.
///
/// The caller may reuse or free its buffers as soon as the call returns. Memory stays
/// bounded whatever the iov: at most about 33 KiB of ciphertext (two records) waits per
/// connection, none on an idle one.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_writev(c: *mut Connection, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    boundary!(data_path, CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        let entries = iov_entries(iov, iovcnt).map_err(Error::Invalid)?;
        conn.writev(entries.iter().map(|e| iov_piece(e)))
    }))
}

/// Linux's IOV_MAX (libc does not export it); writev(2) refuses more.
const IOV_MAX: c_int = 1024;

unsafe fn iov_entries<'a>(iov: *const iovec, iovcnt: c_int) -> Result<&'a [iovec], String> {
    if !(0..=IOV_MAX).contains(&iovcnt) {
        return Err(format!("writev: iovcnt {iovcnt} is outside 0..={}", IOV_MAX));
    }
    if iovcnt == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(format!("writev: iov is NULL with iovcnt {iovcnt}"));
    }
    Ok(std::slice::from_raw_parts(iov, iovcnt as usize))
}

/// An iov entry as bytes, or what is wrong with it, which the core refuses before it
/// commits anything. The length is checked before a slice is made of it.
#[inline(always)]
unsafe fn iov_piece<'a>(e: &iovec) -> Piece<'a> {
    match NonNull::new(e.iov_base) {
        Some(base) if e.iov_len <= isize::MAX as usize => Ok(std::slice::from_raw_parts(base.as_ptr() as *const u8, e.iov_len)),
        _ => unusual_piece(e.iov_base.is_null(), e.iov_len),
    }
}

/// A NULL base is fine for an empty entry only; no length may pass SSIZE_MAX.
#[cold]
fn unusual_piece<'a>(null: bool, len: usize) -> Piece<'a> {
    if len > isize::MAX as usize {
        Err(BadPiece::TooLong)
    } else if null && len == 0 {
        Ok(&[])
    } else {
        Err(BadPiece::NullBase)
    }
}

/// Sends committed bytes that wait for the socket.
/// Returns CONN_TLS_OK when nothing committed is left unsent, CONN_TLS_WANT_WRITE while
/// some waits, CONN_TLS_ERR, or CONN_TLS_EINVAL for NULL.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_flush(c: *mut Connection) -> c_int {
    boundary!(data_path, CONN_TLS_EINVAL, status_of(c, Tls::flush))
}

/// Bytes committed but not yet on the socket (0 for NULL). While > 0, keep write interest
/// on the fd and call conn_tls_flush when it is writable. Does not change the connection.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pending_write(c: *const Connection) -> usize {
    boundary!(data_path, 0, outside_pool(c).map_or(0, Tls::pending_write))
}

/// Decrypted bytes waiting to be read (0 for NULL): while > 0, call conn_tls_read without
/// waiting for the fd. Does not change the connection.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_pending_read(c: *const Connection) -> usize {
    boundary!(data_path, 0, outside_pool(c).map_or(0, Tls::pending_read))
}

/// Flushes what is committed, then sends close_notify (the peer's is not waited for).
/// Returns CONN_TLS_OK when close_notify is on the socket (or the handshake never
/// finished, so there is nothing to close), CONN_TLS_WANT_WRITE (call again when
/// writable), CONN_TLS_ERR, CONN_TLS_EINVAL for NULL. Never closes the fd.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_shutdown(c: *mut Connection) -> c_int {
    boundary!(CONN_TLS_EINVAL, status_of(c, Tls::shutdown))
}

/// Frees a connection; NULL is accepted. Never blocks, never closes the fd; committed
/// bytes not yet sent are dropped. The caller closes the fd afterwards.
///
/// A connection inside a handshake pool (submitted, not yet collected) is not freed under
/// the pool's thread: its handshake is stopped and conn_tls_pool_collect frees it, giving
/// back its `user` tag with `*c` NULL; only then is its fd no longer used, and may be closed.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_free(c: *mut Connection) {
    boundary!((), {
        if !ffi::handle_ref(c).is_some_and(|conn| conn.lent().release()) {
            ffi::free_handle(c)
        }
    })
}

/// Why the most recent call that returned CONN_TLS_ERR or CONN_TLS_EINVAL on this
/// connection failed; "" when none did, or for NULL. Never NULL. The string belongs to the
/// connection and stays valid until the next call on it.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_last_error(c: *const Connection) -> *const c_char {
    boundary!(c"".as_ptr(), outside_pool(c).map_or(c"".as_ptr(), |conn| conn.last_error().as_ptr()))
}

/// The context generation this connection was created with (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn conn_tls_generation(c: *const Connection) -> u64 {
    boundary!(0, outside_pool(c).map_or(0, Tls::generation))
}

/// Sets TCP_USER_TIMEOUT on the connection's socket, overriding the context's default:
/// once sent data stays unacknowledged for `ms` milliseconds, the kernel drops the
/// connection and the next call returns CONN_TLS_ERR with conn_tls_last_error saying the
/// peer timed out. 0 turns it off (then a black-holed peer takes about 15 minutes of
/// retransmits to detect). Note that a peer that is alive but does not read is failed too.
/// A user timeout set here (or by the tcp-user-timeout option) is the caller's: keepalive
/// set later does not change it, and on Linux it also decides when keepalive gives up
/// (see conn_tls_set_keepalive).
/// Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a socket that is not TCP, a value the
/// kernel refuses) with the reason in conn_tls_last_error.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_set_user_timeout(c: *mut Connection, ms: c_uint) -> c_int {
    boundary!(CONN_TLS_EINVAL, status_of(c, |conn| conn.set_user_timeout(ms)))
}

/// Sets TCP keepalive on the connection's socket, overriding the context's default: after
/// `idle_s` idle seconds, `count` probes `interval_s` seconds apart; with none answered the
/// next call returns CONN_TLS_ERR ("peer timed out"). It does not help while sent data is
/// unacknowledged (that is conn_tls_set_user_timeout's job). `idle_s` 0 turns keepalive
/// off.
///
/// On Linux, once a TCP_USER_TIMEOUT is set, it and not `count` decides when keepalive
/// gives up. So:
///  - with the library's default user timeout (client connections), the user timeout is
///    moved to match: idle_s + interval_s * (count - 1/2) seconds, which ends the
///    connection at the tick of the last unanswered probe. An idle dead peer is found
///    within idle_s + interval_s * count seconds (gRPC's rule: user timeout = keepalive
///    timeout). Turning keepalive off restores the default 30000 ms;
///  - with no user timeout (server connections by default), `count` decides, with the
///    same bound;
///  - with a user timeout the caller set (conn_tls_set_user_timeout, the tcp-user-timeout
///    option), the caller's wins: keepalive gives up at the first probe tick at or after
///    that timeout, i.e. after max(timeout, idle_s + interval_s) seconds or up to one
///    interval later.
///
/// Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL, a non-TCP socket, a zero interval or
/// count) with the reason in conn_tls_last_error.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_set_keepalive(c: *mut Connection, idle_s: c_uint, interval_s: c_uint, count: c_uint) -> c_int {
    boundary!(CONN_TLS_EINVAL, status_of(c, |conn| conn.set_keepalive(idle_s, interval_s, count)))
}

/// Copies the peer's certificate, PEM-encoded, into `buf`, like snprintf: returns the PEM
/// length without the NUL (0 when the peer sent no certificate), and writes the PEM,
/// NUL-terminated, only when `len` is larger than that. `buf` may be NULL when `len` is 0.
/// Returns CONN_TLS_EINVAL for a NULL handle or a NULL `buf` with `len` > 0.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_peer_cert_pem(c: *mut Connection, buf: *mut c_char, len: usize) -> ssize_t {
    boundary!(CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        if buf.is_null() && len > 0 {
            return Err(Error::Invalid("peer_cert_pem: buf is NULL and len is not 0".into()));
        }
        Ok(ffi::copy_out(&conn.peer_certificate_pem(), buf, len))
    }))
}

/// Copies the text of subject field `name` ("CN", "O", "OU"... any short or long name
/// OpenSSL knows) of the peer's certificate into `buf`, like conn_tls_peer_cert_pem:
/// returns its length without the NUL (0 when the peer sent no certificate or the subject
/// has no such field) and writes it, NUL-terminated, only when `len` is larger. For
/// Valkey's tls-auth-clients-user (the CN names the user). Returns CONN_TLS_EINVAL for a
/// NULL handle or name, an unknown field name, or a NULL `buf` with `len` > 0.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_peer_cert_field(c: *mut Connection, name: *const c_char, buf: *mut c_char, len: usize) -> ssize_t {
    boundary!(CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        if buf.is_null() && len > 0 {
            return Err(Error::Invalid("peer_cert_field: buf is NULL and len is not 0".into()));
        }
        let name = ffi::str_arg(name, "name").map_err(Error::Invalid)?.ok_or_else(|| Error::Invalid("peer_cert_field: name is NULL".into()))?;
        let text = conn.peer_subject_field(name)?.unwrap_or_default();
        Ok(ffi::copy_out(&text, buf, len))
    }))
}

/// Copies entry `index` (from 0) of the peer certificate's subject alternative names of
/// type `san_type` ("URI", "DNS" or "email", any case) into `buf`, like conn_tls_peer_cert_pem:
/// returns its length without the NUL and writes it, NUL-terminated, only when `len` is
/// larger; returns 0 and writes nothing into `buf` when there is no entry `index`. `*count`
/// gets how many entries of that type there are (0 when the peer sent no certificate) unless
/// `count` is NULL. The bytes are the certificate's: an embedded NUL is copied as is, so
/// compare the returned length, not strlen (Valkey's tls-auth-clients-user uri refuses such
/// an entry). Returns CONN_TLS_EINVAL (nothing written) for a NULL handle or san_type, an
/// unknown type, or a NULL `buf` with `len` > 0.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_peer_cert_san(
    c: *mut Connection,
    san_type: *const c_char,
    index: usize,
    count: *mut usize,
    buf: *mut c_char,
    len: usize,
) -> ssize_t {
    boundary!(CONN_TLS_EINVAL as ssize_t, count_of(c, |conn| {
        if buf.is_null() && len > 0 {
            return Err(Error::Invalid("peer_cert_san: buf is NULL and len is not 0".into()));
        }
        let kind = ffi::str_arg(san_type, "san_type").map_err(Error::Invalid)?.ok_or_else(|| Error::Invalid("peer_cert_san: san_type is NULL".into()))?;
        let names = conn.peer_subject_alt_names(kind)?;
        if !count.is_null() {
            *count = names.len();
        }
        Ok(names.get(index).map_or(0, |name| ffi::copy_out(name, buf, len)))
    }))
}

/// The negotiated protocol ("TLSv1.2", "TLSv1.3"); "" before the handshake is done or for
/// NULL. Static string. Does not change the connection.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_protocol(c: *const Connection) -> *const c_char {
    boundary!(c"".as_ptr(), outside_pool(c).map_or(c"".as_ptr(), |conn| conn.protocol().as_ptr()))
}

/// The negotiated cipher's OpenSSL name (e.g. "TLS_AES_128_GCM_SHA256"); "" before the
/// handshake or for NULL. Static string. Does not change the connection.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_cipher(c: *const Connection) -> *const c_char {
    boundary!(c"".as_ptr(), outside_pool(c).map_or(c"".as_ptr(), |conn| conn.cipher().as_ptr()))
}

/// The key-exchange group the handshake used, as OpenSSL names it ("X25519", "secp256r1",
/// "X25519MLKEM768" for the hybrid post-quantum group on OpenSSL 3.5+); "" before the
/// handshake is done, when no key exchange took place, or for NULL. Static string. Does
/// not change the connection.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_group(c: *const Connection) -> *const c_char {
    boundary!(c"".as_ptr(), outside_pool(c).map_or(c"".as_ptr(), |conn| conn.group().as_ptr()))
}

/// 1 when the handshake resumed an earlier session, else 0 (also for NULL).
#[no_mangle]
pub unsafe extern "C" fn conn_tls_session_reused(c: *const Connection) -> c_int {
    boundary!(0, outside_pool(c).map_or(0, |conn| conn.session_reused() as c_int))
}
