//! The BIO between OpenSSL and the caller's socket.
//!
//! Its write side never tells OpenSSL to retry: ciphertext the socket does not take at once
//! is kept here, in `SocketIo::out`, and sent by `flush`. So `SSL_write`, `SSL_shutdown`
//! and handshake steps always finish their record, and OpenSSL never holds a blocked write
//! whose retry must repeat the same bytes ("bad length", "bad write retry"). The write path
//! commits nothing new while anything waits here, which bounds it to about two records; an
//! idle connection holds no buffer.
//!
//! Sends use MSG_NOSIGNAL so a closed peer never raises SIGPIPE; the fd is never closed.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::sync::OnceLock;

use openssl_sys as ffi;

use crate::fork;

/// Socket state shared with OpenSSL through the BIO's data pointer. Owned (boxed, so its
/// address is stable) by the connection, which drops its SSL, and with it the BIO, first.
pub struct SocketIo {
    fd: c_int,
    /// Ciphertext not yet taken by the socket, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// The first fatal socket error (an errno), 0 while the socket is healthy.
    errno: c_int,
    /// The peer closed its side (recv returned 0).
    eof: bool,
    /// A TCP socket (TCP_QUICKACK applies), not a socketpair.
    tcp: bool,
}

/// What a send attempt ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing is left waiting.
    All,
    /// The socket is full; some ciphertext still waits.
    Blocked,
}

impl SocketIo {
    pub fn new(fd: c_int, tcp: bool) -> Box<SocketIo> {
        Box::new(SocketIo { fd, out: Vec::new(), sent: 0, errno: 0, eof: false, tcp })
    }

    pub fn fd(&self) -> c_int {
        self.fd
    }

    /// Ciphertext bytes waiting for the socket.
    pub fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// The socket's fatal error, if one happened.
    pub fn error(&self) -> Option<c_int> {
        (self.errno != 0).then_some(self.errno)
    }

    pub fn saw_eof(&self) -> bool {
        self.eof
    }

    /// Sends waiting ciphertext until none is left or the socket is full.
    pub fn flush(&mut self) -> Result<Flushed, c_int> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        while self.pending() > 0 {
            match send_some(self.fd, &self.out[self.sent..]) {
                Ok(0) => return Ok(Flushed::Blocked),
                Ok(n) => self.sent += n,
                Err(e) => {
                    self.errno = e;
                    return Err(e);
                }
            }
        }
        // Give the memory back: an idle connection keeps no write buffer.
        self.out = Vec::new();
        self.sent = 0;
        Ok(Flushed::All)
    }

    /// Takes ciphertext from OpenSSL: straight to the socket while nothing waits, the rest
    /// kept in order behind what already waits.
    fn accept(&mut self, data: &[u8]) -> Result<(), c_int> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let mut data = data;
        if self.pending() == 0 {
            while !data.is_empty() {
                match send_some(self.fd, data) {
                    Ok(0) => break,
                    Ok(n) => data = &data[n..],
                    Err(e) => {
                        self.errno = e;
                        return Err(e);
                    }
                }
            }
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, c_int> {
        loop {
            let (n, error) = without_waiting_first(|flags| unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), flags) });
            if n >= 0 {
                self.eof |= n == 0;
                if n > 0 && self.tcp && buf.len() > MAX_RECORD_PAYLOAD {
                    acknowledge_now(self.fd);
                }
                return Ok(Some(n as usize));
            }
            match error {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(None),
                e => {
                    self.errno = e;
                    return Err(e);
                }
            }
        }
    }
}

/// OpenSSL reads a record's body in one request of its full length (no read-ahead), so a
/// request longer than this is a maximum-size record: the peer is sending a message of
/// several records.
const MAX_RECORD_PAYLOAD: usize = 16 * 1024;

/// Sends the ACK the kernel is holding back, now. A peer sending a multi-record message
/// with Nagle on (redis-benchmark, many clients) holds its next record until this one is
/// acknowledged, and the delayed ACK would make that wait about 40 ms per message.
fn acknowledge_now(fd: c_int) {
    let one: c_int = 1;
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
}

/// Runs a recv or send (`call` with its flags) and returns its result and errno: first with
/// MSG_DONTWAIT, and only when nothing could move now, as the socket is (a blocking socket
/// waits there) with this thread's fork section suspended, so a fork meanwhile need not
/// wait for the peer (`crate::fork`). On a non-blocking socket that second try costs one
/// more syscall where the call would fail with EAGAIN anyway.
fn without_waiting_first(mut call: impl FnMut(c_int) -> isize) -> (isize, c_int) {
    let n = call(libc::MSG_DONTWAIT);
    let error = if n < 0 { errno() } else { 0 };
    if n >= 0 || error != libc::EAGAIN {
        return (n, error);
    }
    // errno is read before the section resumes, which may sleep.
    fork::blocking(|| {
        let n = call(0);
        (n, if n < 0 { errno() } else { 0 })
    })
}

/// Ok(0) when the socket is full.
fn send_some(fd: c_int, data: &[u8]) -> Result<usize, c_int> {
    loop {
        let (n, error) = without_waiting_first(|flags| unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags | libc::MSG_NOSIGNAL) });
        if n >= 0 {
            return Ok(n as usize);
        }
        match error {
            libc::EINTR => continue,
            libc::EAGAIN => return Ok(0),
            e => return Err(e),
        }
    }
}

pub fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Makes the BIO for `io` and gives it to `ssl` for both directions.
///
/// # Safety
/// `io` must stay at its address until `ssl` is freed.
pub unsafe fn attach(ssl: *mut ffi::SSL, io: *mut SocketIo) -> Result<(), String> {
    let bio = ffi::BIO_new(method());
    if bio.is_null() {
        return Err(crate::ossl::with_queue("cannot allocate a BIO"));
    }
    ffi::BIO_set_data(bio, io.cast());
    ffi::BIO_set_init(bio, 1);
    ffi::SSL_set_bio(ssl, bio, bio);
    Ok(())
}

fn method() -> *const ffi::BIO_METHOD {
    // The method table lives as long as the process; every connection's BIO points at it.
    static METHOD: OnceLock<usize> = OnceLock::new();
    *METHOD.get_or_init(|| unsafe {
        let m = ffi::BIO_meth_new(ffi::BIO_TYPE_NONE, c"conntls socket".as_ptr());
        assert!(!m.is_null(), "out of memory creating the BIO method");
        ffi::BIO_meth_set_write__fixed_rust(m, Some(bio_write));
        ffi::BIO_meth_set_read__fixed_rust(m, Some(bio_read));
        ffi::BIO_meth_set_ctrl__fixed_rust(m, Some(bio_ctrl));
        m as usize
    }) as *const ffi::BIO_METHOD
}

unsafe fn io_of<'a>(bio: *mut ffi::BIO) -> &'a mut SocketIo {
    &mut *(ffi::BIO_get_data(bio) as *mut SocketIo)
}

unsafe extern "C" fn bio_write(bio: *mut ffi::BIO, data: *const c_char, len: c_int) -> c_int {
    ffi::BIO_clear_retry_flags(bio);
    if len <= 0 {
        return 0;
    }
    let data = std::slice::from_raw_parts(data as *const u8, len as usize);
    match io_of(bio).accept(data) {
        Ok(()) => len,
        Err(_) => -1,
    }
}

unsafe extern "C" fn bio_read(bio: *mut ffi::BIO, buf: *mut c_char, len: c_int) -> c_int {
    ffi::BIO_clear_retry_flags(bio);
    if len <= 0 {
        return 0;
    }
    let buf = std::slice::from_raw_parts_mut(buf as *mut u8, len as usize);
    match io_of(bio).receive(buf) {
        Ok(Some(n)) => n as c_int,
        Ok(None) => {
            ffi::BIO_set_retry_read(bio);
            -1
        }
        Err(_) => -1,
    }
}

unsafe extern "C" fn bio_ctrl(_bio: *mut ffi::BIO, cmd: c_int, _larg: c_long, _parg: *mut c_void) -> c_long {
    // OpenSSL flushes after each flight; what the socket did not take waits for `flush`.
    (cmd == ffi::BIO_CTRL_FLUSH) as c_long
}
