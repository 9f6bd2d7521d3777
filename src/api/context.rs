use std::ffi::{c_char, c_int};

use libc::ssize_t;

use crate::config::Config;
use crate::context::{CertRole, Context};
use crate::ffi::{self, boundary, CONN_TLS_EINVAL, CONN_TLS_ERR, CONN_TLS_OK};

/// Which certificates conn_tls_ctx_cert_info describes (conn_tls_cert_kind; passed as int).
#[repr(C)]
#[allow(non_camel_case_types)]
pub enum CertKind {
    /// The server's own certificate (cert-file).
    CONN_TLS_CERT_SERVER = 0,
    /// The certificate client connections present (client-cert-file, else cert-file).
    CONN_TLS_CERT_CLIENT = 1,
    /// The trusted CA certificates (ca-cert-file and ca-cert-dir).
    CONN_TLS_CERT_CA = 2,
}

const CONN_TLS_CERT_SERVER: c_int = CertKind::CONN_TLS_CERT_SERVER as c_int;
const CONN_TLS_CERT_CLIENT: c_int = CertKind::CONN_TLS_CERT_CLIENT as c_int;
const CONN_TLS_CERT_CA: c_int = CertKind::CONN_TLS_CERT_CA as c_int;

/// Builds a context from `cfg`: reads every file the options name and checks them all.
///
/// Ownership: `cfg` stays the caller's (it may be freed right after); the caller owns the
/// result and frees it with conn_tls_ctx_free.
/// Threads: a context may be used from any number of threads at once.
/// Files: every file option must name a regular file (ca-cert-dir a directory, of which
/// the regular files are read). Anything else (a FIFO, a device such as /dev/zero, a
/// socket, a directory) is refused at once, without blocking. A file may hold at most
/// 8 MiB, and the files of ca-cert-dir 64 MiB together.
/// Returns NULL on failure (a NULL cfg, or memory running out, too), with a message in
/// `err` naming the file or option and the reason (missing, unreadable, not a regular
/// file, too large, not PEM, wrong or missing passphrase, key does not match the
/// certificate, a certificate outside its validity period or whose validity cannot be
/// read, no CA while auth-clients is yes, no usable cipher, a group this
/// OpenSSL does not know...). The same status and message are recorded for the thread
/// (conn_tls_thread_last_status: CONN_TLS_EINVAL for a NULL cfg, else CONN_TLS_ERR).
/// A context without cert-file/key-file makes client connections only. With
/// auth-clients optional and no CA, clients without a certificate connect and a
/// certificate a client presents fails its verification (as with an empty trust store:
/// what Valkey and Redis do after CONFIG SET tls-auth-clients optional with no CA).
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_new(cfg: *const Config, err: *mut c_char, errlen: usize) -> *mut Context {
    boundary!(std::ptr::null_mut(), {
        let Some(cfg) = ffi::handle_ref(cfg) else {
            ffi::fail_with(err, errlen, CONN_TLS_EINVAL, "cfg is NULL");
            return std::ptr::null_mut();
        };
        match Context::new(cfg) {
            Ok(ctx) => ffi::into_handle(ctx),
            Err(msg) => {
                ffi::fail_with(err, errlen, CONN_TLS_ERR, &msg);
                std::ptr::null_mut()
            }
        }
    })
}

unsafe fn reload(ctx: *const Context, cfg: *const Config, err: *mut c_char, errlen: usize, only_if_changed: bool) -> c_int {
    let (Some(ctx), Some(cfg)) = (ffi::handle_ref(ctx), ffi::handle_ref(cfg)) else {
        return ffi::fail_with(err, errlen, CONN_TLS_EINVAL, "ctx or cfg is NULL");
    };
    match ctx.reload(cfg, only_if_changed) {
        Ok(swapped) => swapped as c_int,
        Err(msg) => ffi::fail_with(err, errlen, CONN_TLS_ERR, &msg),
    }
}

/// Builds a new generation from `cfg` and, once it is complete and checked, swaps it in
/// atomically.
///
/// Threads: safe while other threads create connections and run handshakes and IO on any
/// connection; concurrent reloads are serialized. Connections created after the call
/// returns use the new settings; older ones keep theirs until freed. Sessions issued
/// before the reload still resume after it unless the trust settings (ca-cert-file,
/// ca-cert-dir, auth-clients) changed.
/// Returns CONN_TLS_OK; CONN_TLS_ERR with a message (as conn_tls_ctx_new's) when the new
/// settings do not build, and then nothing changes; CONN_TLS_EINVAL for NULL arguments.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_reload(ctx: *mut Context, cfg: *const Config, err: *mut c_char, errlen: usize) -> c_int {
    boundary!(CONN_TLS_EINVAL, match reload(ctx, cfg, err, errlen, false) {
        1 => CONN_TLS_OK,
        status => status,
    })
}

/// Like conn_tls_ctx_reload, but only when an option or the content of a file named by the
/// options changed since the live generation was built.
///
/// Threads: meant to be called from a background thread on a timer.
/// Returns 1 when it swapped in a new generation, 0 when nothing changed, or a negative
/// code (CONN_TLS_ERR with a message, CONN_TLS_EINVAL) when it failed; then nothing changes.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_reload_if_changed(
    ctx: *mut Context,
    cfg: *const Config,
    err: *mut c_char,
    errlen: usize,
) -> c_int {
    boundary!(CONN_TLS_EINVAL, reload(ctx, cfg, err, errlen, true))
}

/// The live generation: 1 after conn_tls_ctx_new, one more per successful reload.
/// Returns 0 for NULL. Does not change the context.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_generation(ctx: *const Context) -> u64 {
    boundary!(0, ffi::handle_ref(ctx).map_or(0, Context::generation))
}

/// Frees a context. NULL is accepted. Connections made from it may still be live: they
/// keep working and are freed normally with conn_tls_free.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_free(ctx: *mut Context) {
    boundary!((), ffi::free_handle(ctx))
}

/// Facts about the certificates of the live generation, for INFO-style monitoring
/// (Valkey's tls_*_cert_expire_time and tls_*_cert_serial): `which` is CONN_TLS_CERT_SERVER,
/// CONN_TLS_CERT_CLIENT or CONN_TLS_CERT_CA.
///
/// On success writes `*count` (how many certificates; 0 when none is configured),
/// `*not_after` (the earliest expiry among them, seconds since the epoch; 0 when none) and
/// the serial number of the one expiring first, upper-case hex, into `serial` like
/// snprintf; returns the serial's length without the NUL. Returns CONN_TLS_EINVAL (nothing
/// written) for a NULL ctx, not_after or count, an unknown `which`, or a NULL `serial` with
/// `serial_len` > 0. Threads: any; does not change the context.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_ctx_cert_info(
    ctx: *const Context,
    which: c_int,
    not_after: *mut i64,
    count: *mut usize,
    serial: *mut std::ffi::c_char,
    serial_len: usize,
) -> ssize_t {
    boundary!(CONN_TLS_EINVAL as ssize_t, {
        let invalid = |msg: &str| ffi::fail(CONN_TLS_EINVAL, &format!("cert_info: {msg}")) as ssize_t;
        let role = match which {
            CONN_TLS_CERT_SERVER => CertRole::Server,
            CONN_TLS_CERT_CLIENT => CertRole::Client,
            CONN_TLS_CERT_CA => CertRole::Ca,
            _ => return invalid(&format!("unknown certificate kind {which}")),
        };
        let Some(ctx) = ffi::handle_ref(ctx) else { return invalid("ctx is NULL") };
        if not_after.is_null() || count.is_null() {
            return invalid("not_after or count is NULL");
        }
        if serial.is_null() && serial_len > 0 {
            return invalid("serial is NULL and serial_len is not 0");
        }
        let generation = ctx.current();
        let facts = generation.cert_facts(role);
        *not_after = facts.not_after;
        *count = facts.count;
        ffi::copy_out(facts.serial.as_bytes(), serial, serial_len) as ssize_t
    })
}
