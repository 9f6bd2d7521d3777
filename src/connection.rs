//! One TLS connection over the caller's non-blocking socket: handshake, read, shutdown and
//! what can be asked about it. The write path is in `writev`.

use std::cell::UnsafeCell;
use std::ffi::{c_int, CStr, CString};
use std::net::IpAddr;
use std::sync::Arc;

use openssl_sys as ffi;

use crate::context::{session_slot_index, Context, Generation, SessionSlot};
use crate::liveness::{self, UserTimeout};
use crate::pool::Lent;
use crate::ossl::{self, Ssl, X509};
use crate::socket_bio::{self, Flushed, SocketIo};

/// How a call did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Nothing done; call again when the fd is readable.
    WantRead,
    /// Nothing done; call again when the fd is writable.
    WantWrite,
    /// The connection is dead; the message says why.
    Fatal(String),
    /// A bad argument; nothing changed.
    Invalid(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::WantRead => f.write_str("waiting for the socket to be readable"),
            Error::WantWrite => f.write_str("waiting for the socket to be writable"),
            Error::Fatal(msg) | Error::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// What an SSL_* call's failure means.
enum Failure {
    Error(Error),
    /// The peer closed the TLS stream (close_notify, or EOF, which conntls treats alike).
    Closed,
}

/// One TLS connection over a caller-owned socket (conn_tls).
// Its TLS state, and whether a handshake pool has it. While a pool has it, the pool's
// worker steps the TLS state through the cell and the owner's calls look only at `lent`
// (one atomic load, no lock): the two never hold references to the same data.
pub struct Connection {
    lent: Lent,
    tls: UnsafeCell<Tls>,
}

impl Connection {
    pub fn new(tls: Tls) -> Connection {
        Connection { lent: Lent::default(), tls: UnsafeCell::new(tls) }
    }

    pub fn lent(&self) -> &Lent {
        &self.lent
    }

    /// The TLS state, for its owner: None while a pool has it.
    pub fn tls(&self) -> Option<&Tls> {
        (!self.lent.is_inside()).then(|| unsafe { &*self.tls.get() })
    }

    /// The TLS state, for its owner: None while a pool has it.
    pub fn tls_mut(&mut self) -> Option<&mut Tls> {
        (!self.lent.is_inside()).then(|| self.tls.get_mut())
    }

    /// The TLS state, for the pool's worker that drives it.
    ///
    /// # Safety
    /// Only the one thread that the connection is lent to, while it is lent.
    // From &self through the UnsafeCell: the owner holds &Connection meanwhile and reads `lent` only.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn lent_tls(&self) -> &mut Tls {
        &mut *self.tls.get()
    }
}

/// One TLS connection over a caller-owned socket.
pub struct Tls {
    // Field order is drop order: the SSL (and the BIO pointing into `io`) goes first.
    ssl: Ssl,
    io: Box<SocketIo>,
    _session_slot: Option<Box<SessionSlot>>,
    generation: Arc<Generation>,
    /// Who decides TCP_USER_TIMEOUT; keepalive set later moves it only when the library does.
    user_timeout: UserTimeout,
    established: bool,
    /// A server connection (it sheds clients that left before their handshake began).
    server: bool,
    shutdown_sent: bool,
    /// Set by the first fatal error; every later call fails with it.
    dead: Option<String>,
    last_error: CString,
}

impl Tls {
    /// Err(Invalid) for a bad argument (fd, context), Err(Fatal) when OpenSSL or the socket
    /// fails.
    pub fn new_server(ctx: &Context, fd: c_int) -> Result<Tls, Error> {
        let generation = ctx.current();
        let Some(server) = generation.server.as_ref() else {
            return Err(Error::Invalid("the context has no cert-file/key-file: it makes client connections only".into()));
        };
        let ssl = Ssl::from_raw(unsafe { ffi::SSL_new(server.as_ptr()) })
            .ok_or_else(|| Error::Fatal(ossl::with_queue("SSL_new failed")))?;
        unsafe { ffi::SSL_set_accept_state(ssl.as_ptr()) };
        Tls::finish(ssl, fd, generation, None, false)
    }

    /// Errors as `new_server`'s.
    pub fn new_client(ctx: &Context, fd: c_int, server_name: Option<&str>) -> Result<Tls, Error> {
        let generation = ctx.current();
        let ssl = Ssl::from_raw(unsafe { ffi::SSL_new(generation.client.as_ptr()) })
            .ok_or_else(|| Error::Fatal(ossl::with_queue("SSL_new failed")))?;
        let p = ssl.as_ptr();
        unsafe { ffi::SSL_set_connect_state(p) };
        if let Some(name) = server_name {
            let c_name = CString::new(name).map_err(|_| Error::Invalid("server_name contains a NUL byte".into()))?;
            let verify = generation.verify_server_name;
            let ok = unsafe {
                if name.parse::<IpAddr>().is_ok() {
                    // An address is checked against the certificate's IP entries and, as
                    // RFC 6066 asks, not sent as SNI.
                    !verify || ossl::X509_VERIFY_PARAM_set1_ip_asc(ossl::SSL_get0_param(p), c_name.as_ptr()) == 1
                } else {
                    (!verify || ossl::X509_VERIFY_PARAM_set1_host(ossl::SSL_get0_param(p), c_name.as_ptr(), 0) == 1)
                        && ffi::SSL_set_tlsext_host_name(p, c_name.as_ptr() as *mut _) == 1
                }
            };
            if !ok {
                return Err(Error::Invalid(ossl::with_queue(format!("server_name '{name}' is not a usable host name"))));
            }
        }
        let slot = if generation.session_caching {
            let name = server_name.map(str::to_string);
            if let Some(session) = ctx.sessions().offer(generation.trust_epoch, &name) {
                unsafe { ffi::SSL_set_session(p, session.as_ptr()) };
            }
            let slot = Box::new(SessionSlot { sessions: Arc::clone(ctx.sessions()), name, epoch: generation.trust_epoch });
            unsafe { ffi::SSL_set_ex_data(p, session_slot_index(), &*slot as *const SessionSlot as *mut _) };
            Some(slot)
        } else {
            None
        };
        Tls::finish(ssl, fd, generation, slot, true)
    }

    fn finish(
        ssl: Ssl,
        fd: c_int,
        generation: Arc<Generation>,
        session_slot: Option<Box<SessionSlot>>,
        client: bool,
    ) -> Result<Tls, Error> {
        let tcp = check_stream_socket(fd).map_err(Error::Invalid)?;
        let user_timeout = if tcp { generation.liveness.apply(fd, client).map_err(Error::Fatal)? } else { UserTimeout::Untouched };
        let mut io = SocketIo::new(fd, tcp);
        unsafe { socket_bio::attach(ssl.as_ptr(), &mut *io).map_err(Error::Fatal)? };
        ossl::clear_error_queue();
        Ok(Tls {
            ssl,
            io,
            _session_slot: session_slot,
            generation,
            user_timeout,
            established: false,
            server: !client,
            shutdown_sent: false,
            dead: None,
            last_error: CString::default(),
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.number
    }

    pub fn fd(&self) -> c_int {
        self.io.fd()
    }

    pub fn last_error(&self) -> &CStr {
        &self.last_error
    }

    /// Records the message of a failed call for `last_error`.
    pub fn note_error(&mut self, error: &Error) {
        if let Error::Fatal(msg) | Error::Invalid(msg) = error {
            self.last_error = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        }
    }

    pub(crate) fn ssl_ptr(&self) -> *mut ffi::SSL {
        self.ssl.as_ptr()
    }

    /// Fails at once when an earlier call found the connection dead.
    pub(crate) fn check_alive(&self) -> Result<(), Error> {
        match &self.dead {
            Some(msg) => Err(Error::Fatal(msg.clone())),
            None => Ok(()),
        }
    }

    /// Marks the connection dead with `msg` and gives the error to return.
    pub(crate) fn die(&mut self, msg: String) -> Error {
        log::debug!("conntls: fd {}: {msg}", self.io.fd());
        self.dead = Some(msg.clone());
        Error::Fatal(msg)
    }

    /// Sends waiting ciphertext; a socket error kills the connection.
    pub(crate) fn flush_out(&mut self) -> Result<Flushed, Error> {
        self.io.flush().map_err(|errno| self.die(liveness::describe_socket_error(errno)))
    }

    /// What an SSL_* call that returned `ret` failed with. Fatal failures kill the connection.
    fn classify(&mut self, ret: c_int) -> Failure {
        let code = unsafe { ffi::SSL_get_error(self.ssl.as_ptr(), ret) };
        let msg = match code {
            ffi::SSL_ERROR_WANT_READ => return Failure::Error(Error::WantRead),
            ffi::SSL_ERROR_WANT_WRITE => return Failure::Error(Error::WantWrite),
            ffi::SSL_ERROR_ZERO_RETURN => {
                ossl::clear_error_queue();
                return Failure::Closed;
            }
            ffi::SSL_ERROR_SYSCALL => match self.io.error() {
                Some(errno) => {
                    ossl::clear_error_queue();
                    liveness::describe_socket_error(errno)
                }
                None if ret == 0 || self.io.saw_eof() => {
                    ossl::clear_error_queue();
                    return Failure::Closed;
                }
                None => ossl::with_queue("TLS system call failed"),
            },
            ffi::SSL_ERROR_SSL => {
                let verify = unsafe { ffi::SSL_get_verify_result(self.ssl.as_ptr()) };
                if verify != ffi::X509_V_OK as _ {
                    let why = ossl::static_str(unsafe { ffi::X509_verify_cert_error_string(verify) });
                    ossl::with_queue(format!("peer certificate verify failed: {why}"))
                } else {
                    ossl::with_queue("TLS error")
                }
            }
            other => ossl::with_queue(format!("unexpected SSL error code {other}")),
        };
        // An alert OpenSSL queued for the peer goes out if the socket takes it.
        let _ = self.io.flush();
        Failure::Error(self.die(msg))
    }

    pub(crate) fn classify_call(&mut self, ret: c_int, during: &str) -> Error {
        match self.classify(ret) {
            Failure::Error(e) => e,
            Failure::Closed => self.die(format!("peer closed the connection during {during}")),
        }
    }

    /// Runs one handshake step. Ok once the handshake is done and its last flight is on
    /// the socket.
    pub fn handshake(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        if !self.established {
            // A client that closed before the server's first flight can never finish (its
            // Finished must answer that flight): shed it before the key exchange and the
            // signature are computed for nobody (connection storms, valkey #4308).
            if self.server && unsafe { ossl::SSL_in_before(self.ssl.as_ptr()) } == 1 && liveness::peer_has_closed(self.io.fd()) {
                return Err(self.die("the client closed the connection before its handshake began".into()));
            }
            ossl::clear_error_queue();
            let r = unsafe { ffi::SSL_do_handshake(self.ssl.as_ptr()) };
            if r == 1 {
                self.established = true;
            } else {
                let e = self.classify_call(r, "the handshake");
                // Our flight must reach the peer before its answer can come.
                if e == Error::WantRead && self.flush_out()? == Flushed::Blocked {
                    return Err(Error::WantWrite);
                }
                return Err(e);
            }
        }
        match self.flush_out()? {
            Flushed::All => Ok(()),
            Flushed::Blocked => Err(Error::WantWrite),
        }
    }

    /// Handshake finished and no fatal error: a write goes straight to encryption.
    pub(crate) fn is_open(&self) -> bool {
        self.established && self.dead.is_none()
    }

    /// Drives the handshake when reads or writes come before it finished.
    pub(crate) fn ensure_established(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        if self.established {
            Ok(())
        } else {
            self.handshake()
        }
    }

    /// Ok(0): the peer closed the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Err(Error::Invalid("read: len is 0".into()));
        }
        self.ensure_established()?;
        ossl::clear_error_queue();
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        let r = unsafe { ffi::SSL_read(self.ssl.as_ptr(), buf.as_mut_ptr().cast(), len) };
        let result = if r > 0 {
            Ok(r as usize)
        } else {
            match self.classify(r) {
                Failure::Closed => Ok(0),
                Failure::Error(e) => Err(e),
            }
        };
        // A read can make OpenSSL answer (a KeyUpdate, an alert): send it if the socket
        // takes it now, else pending_write tells the caller. A socket error shows on the
        // next call.
        if self.dead.is_none() {
            let _ = self.io.flush();
        }
        result
    }

    /// Decrypted bytes waiting to be read.
    pub fn pending_read(&self) -> usize {
        unsafe { ffi::SSL_pending(self.ssl.as_ptr()) }.max(0) as usize
    }

    /// Committed bytes not yet on the socket (as ciphertext).
    pub fn pending_write(&self) -> usize {
        self.io.pending()
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        match self.flush_out()? {
            Flushed::All => Ok(()),
            Flushed::Blocked => Err(Error::WantWrite),
        }
    }

    /// Flushes what is committed, then sends close_notify. The peer's close_notify is not
    /// waited for.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        if !self.established {
            // No TLS session to close: the caller may just close the fd.
            return Ok(());
        }
        if self.flush_out()? == Flushed::Blocked {
            return Err(Error::WantWrite);
        }
        if !self.shutdown_sent {
            ossl::clear_error_queue();
            let r = unsafe { ffi::SSL_shutdown(self.ssl.as_ptr()) };
            if r < 0 {
                if let Failure::Error(e) = self.classify(r) {
                    if matches!(e, Error::Fatal(_)) {
                        return Err(e);
                    }
                }
            }
            self.shutdown_sent = true;
        }
        self.flush()
    }

    pub fn protocol(&self) -> &'static CStr {
        if !self.established {
            return c"";
        }
        unsafe { CStr::from_ptr(ffi::SSL_get_version(self.ssl.as_ptr())) }
    }

    pub fn cipher(&self) -> &'static CStr {
        let cipher = unsafe { ffi::SSL_get_current_cipher(self.ssl.as_ptr()) };
        if cipher.is_null() {
            return c"";
        }
        unsafe { CStr::from_ptr(ffi::SSL_CIPHER_get_name(cipher)) }
    }

    /// The key-exchange group the handshake used ("X25519", "X25519MLKEM768"...); "" before
    /// the handshake, or when none was (a resumption without key exchange).
    pub fn group(&self) -> &'static CStr {
        if !self.established {
            return c"";
        }
        let id = unsafe { ffi::SSL_ctrl(self.ssl.as_ptr(), ossl::SSL_CTRL_GET_NEGOTIATED_GROUP, 0, std::ptr::null_mut()) };
        let name = if id > 0 { unsafe { ossl::SSL_group_to_name(self.ssl.as_ptr(), id as c_int) } } else { std::ptr::null() };
        ossl::clear_error_queue();
        if name.is_null() {
            c""
        } else {
            unsafe { CStr::from_ptr(name) }
        }
    }

    pub fn session_reused(&self) -> bool {
        self.established && unsafe { ffi::SSL_session_reused(self.ssl.as_ptr()) } == 1
    }

    /// The peer's certificate as PEM; empty when it sent none.
    pub fn peer_certificate_pem(&self) -> Vec<u8> {
        match X509::from_raw(unsafe { ffi::SSL_get1_peer_certificate(self.ssl.as_ptr()) }) {
            Some(cert) => ossl::certificate_pem(&cert),
            None => Vec::new(),
        }
    }

    /// The text of subject field `name` ("CN", "O"...) of the peer's certificate; None when
    /// the peer sent no certificate or it has no such field.
    pub fn peer_subject_field(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let nid = ossl::field_nid(name).ok_or_else(|| Error::Invalid(format!("unknown certificate field '{name}'")))?;
        let cert = X509::from_raw(unsafe { ffi::SSL_get1_peer_certificate(self.ssl.as_ptr()) });
        Ok(cert.and_then(|cert| ossl::subject_field(&cert, nid)))
    }

    /// The peer certificate's subject alternative names of one kind ("URI", "DNS" or
    /// "email", any case), in order; empty when the peer sent no certificate or it has none.
    pub fn peer_subject_alt_names(&self, kind: &str) -> Result<Vec<Vec<u8>>, Error> {
        let kind = match kind.to_ascii_lowercase().as_str() {
            "uri" => ffi::GEN_URI,
            "dns" => ffi::GEN_DNS,
            "email" => ffi::GEN_EMAIL,
            _ => return Err(Error::Invalid(format!("unknown subject alternative name type '{kind}' (URI, DNS or email)"))),
        };
        let cert = X509::from_raw(unsafe { ffi::SSL_get1_peer_certificate(self.ssl.as_ptr()) });
        Ok(cert.map(|cert| ossl::subject_alt_names(&cert, kind)).unwrap_or_default())
    }

    /// From now on the user timeout is the caller's: keepalive no longer moves it.
    pub fn set_user_timeout(&mut self, ms: u32) -> Result<(), Error> {
        liveness::set_user_timeout(self.io.fd(), ms).map_err(Error::Invalid)?;
        self.user_timeout = UserTimeout::Caller;
        Ok(())
    }

    pub fn set_keepalive(&mut self, idle_s: u32, interval_s: u32, count: u32) -> Result<(), Error> {
        liveness::set_keepalive_for(self.io.fd(), self.user_timeout, idle_s, interval_s, count).map_err(Error::Invalid)
    }
}

/// Ok(true) for a TCP socket, Ok(false) for another stream socket (a socketpair); an error
/// for anything else, which the library cannot drive.
fn check_stream_socket(fd: c_int) -> Result<bool, String> {
    if fd < 0 {
        return Err(format!("fd {fd} is negative"));
    }
    let get = |level, name| -> Result<c_int, String> {
        let mut value: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        let r = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut c_int).cast(), &mut len) };
        if r == 0 {
            Ok(value)
        } else {
            Err(format!("fd {fd} is not a usable socket: {}", std::io::Error::last_os_error()))
        }
    };
    if get(libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(format!("fd {fd} is not a stream socket"));
    }
    let domain = get(libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    Ok(domain == libc::AF_INET || domain == libc::AF_INET6)
}
