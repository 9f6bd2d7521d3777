//! The thin layer over openssl-sys: owners that free what OpenSSL allocated, the error
//! queue turned into text, and the few declarations openssl-sys does not carry.
//! Everything unsafe about OpenSSL objects lives here and in `socket_bio`.

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::ptr::NonNull;

use openssl_sys as ffi;

extern "C" {
    fn ERR_peek_error() -> std::ffi::c_ulong;
    fn ERR_error_string_n(e: std::ffi::c_ulong, buf: *mut c_char, len: usize);
    fn EVP_Q_digest(
        libctx: *mut c_void,
        name: *const c_char,
        propq: *const c_char,
        data: *const c_void,
        datalen: usize,
        md: *mut u8,
        mdlen: *mut usize,
    ) -> c_int;
    // Not SSL_set1_host, X509_cmp_current_time or X509_NAME_get_text_by_NID: OpenSSL 4.0
    // deprecates them. What is used instead exists, undeprecated, from 3.0 on.
    pub(crate) fn X509_VERIFY_PARAM_set1_host(
        param: *mut ffi::X509_VERIFY_PARAM,
        name: *const c_char,
        namelen: usize,
    ) -> c_int;
    pub(crate) fn SSL_get0_param(ssl: *mut ffi::SSL) -> *mut ffi::X509_VERIFY_PARAM;
    pub(crate) fn X509_VERIFY_PARAM_set1_ip_asc(
        param: *mut ffi::X509_VERIFY_PARAM,
        ipasc: *const c_char,
    ) -> c_int;
    pub(crate) fn SSL_SESSION_is_resumable(s: *const ffi::SSL_SESSION) -> c_int;
    pub(crate) fn SSL_SESSION_dup(s: *const ffi::SSL_SESSION) -> *mut ffi::SSL_SESSION;
    fn BIO_free(bio: *mut ffi::BIO) -> c_int;
    fn X509_STORE_up_ref(store: *mut ffi::X509_STORE) -> c_int;
    fn ASN1_TIME_cmp_time_t(s: *const ffi::ASN1_TIME, t: libc::time_t) -> c_int;
    fn ASN1_TIME_to_tm(s: *const ffi::ASN1_TIME, tm: *mut libc::tm) -> c_int;
    fn OBJ_txt2nid(s: *const c_char) -> c_int;
    fn X509_NAME_get_index_by_NID(name: *const ffi::X509_NAME, nid: c_int, lastpos: c_int) -> c_int;
    fn X509_NAME_get_entry(name: *const ffi::X509_NAME, loc: c_int) -> *const ffi::X509_NAME_ENTRY;
    fn X509_NAME_ENTRY_get_data(entry: *const ffi::X509_NAME_ENTRY) -> *const ffi::ASN1_STRING;
    fn ASN1_STRING_get0_data(s: *const ffi::ASN1_STRING) -> *const u8;
    fn ASN1_STRING_length(s: *const ffi::ASN1_STRING) -> c_int;
    pub(crate) fn SSL_CTX_set_timeout(ctx: *mut ffi::SSL_CTX, t: c_long) -> c_long;
    pub(crate) fn SSL_in_before(ssl: *const ffi::SSL) -> c_int;
    pub(crate) fn SSL_group_to_name(ssl: *mut ffi::SSL, id: c_int) -> *const c_char;
    fn GENERAL_NAMES_free(names: *mut ffi::stack_st_GENERAL_NAME);
    fn PEM_read_bio_Parameters(bio: *mut ffi::BIO, x: *mut *mut ffi::EVP_PKEY) -> *mut ffi::EVP_PKEY;
}

pub(crate) const SSL_CTRL_SET_TLSEXT_TICKET_KEYS: c_int = 59;
pub(crate) const SSL_CTRL_CHAIN_CERT: c_int = 89;
pub(crate) const BIO_CTRL_INFO: c_int = 3;
pub(crate) const SSL_CTRL_GET_NEGOTIATED_GROUP: c_int = 134;

/// OpenSSL's own name and version, e.g. "OpenSSL 3.0.19 27 Jan 2026".
pub fn openssl_version() -> &'static CStr {
    unsafe { CStr::from_ptr(ffi::OpenSSL_version(ffi::OPENSSL_VERSION)) }
}

/// Empties the calling thread's error queue, so nothing one call left behind is blamed on
/// the next connection served by this thread. Peeking first is much cheaper than clearing,
/// and the queue is nearly always empty.
pub fn clear_error_queue() {
    unsafe {
        if ERR_peek_error() != 0 {
            ffi::ERR_clear_error()
        }
    }
}

/// Drains the calling thread's error queue into one line ("" when it was empty).
pub fn take_error_queue() -> String {
    let mut parts: Vec<String> = Vec::new();
    loop {
        let code = unsafe { ffi::ERR_get_error() };
        if code == 0 {
            break;
        }
        let mut buf = [0 as c_char; 256];
        unsafe { ERR_error_string_n(code, buf.as_mut_ptr(), buf.len()) };
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        if !parts.contains(&text) {
            parts.push(text);
        }
    }
    parts.join("; ")
}

/// Joins a description with what OpenSSL said, if it said anything.
pub fn with_queue(what: impl Into<String>) -> String {
    let mut msg = what.into();
    let queue = take_error_queue();
    if !queue.is_empty() {
        msg.push_str(" (");
        msg.push_str(&queue);
        msg.push(')');
    }
    msg
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut len = out.len();
    let ok = unsafe {
        EVP_Q_digest(
            std::ptr::null_mut(),
            c"SHA256".as_ptr(),
            std::ptr::null(),
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr(),
            &mut len,
        )
    };
    // SHA-256 is always present in the default provider; a failure here means libcrypto is
    // unusable, and then nothing else will work either.
    assert!(ok == 1, "libcrypto cannot compute SHA-256");
    out
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    if unsafe { ffi::RAND_bytes(out.as_mut_ptr(), N as c_int) } != 1 {
        return Err(with_queue("the random number generator failed"));
    }
    Ok(out)
}

/// Defines an owner of an OpenSSL pointer that frees it on drop.
macro_rules! owner {
    ($(#[$meta:meta])* $name:ident, $raw:ty, $free:path) => {
        $(#[$meta])*
        pub struct $name(NonNull<$raw>);

        impl $name {
            /// Takes ownership of one reference; None when OpenSSL returned NULL.
            pub fn from_raw(ptr: *mut $raw) -> Option<Self> {
                NonNull::new(ptr).map(Self)
            }
            pub fn as_ptr(&self) -> *mut $raw {
                self.0.as_ptr()
            }
            /// Gives up ownership, for a call that takes it.
            #[allow(dead_code)] // used for some owners only
            pub fn into_raw(self) -> *mut $raw {
                std::mem::ManuallyDrop::new(self).0.as_ptr()
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                unsafe { $free(self.0.as_ptr()) }
            }
        }
    };
}

owner!(
    /// An SSL_CTX. Only mutated while being built; shared read-only once a generation is live.
    SslCtx, ffi::SSL_CTX, ffi::SSL_CTX_free
);
owner!(
    /// One connection's SSL object.
    Ssl, ffi::SSL, ffi::SSL_free
);
owner!(X509, ffi::X509, ffi::X509_free);
owner!(PKey, ffi::EVP_PKEY, ffi::EVP_PKEY_free);
owner!(X509Store, ffi::X509_STORE, ffi::X509_STORE_free);
owner!(Bio, ffi::BIO, bio_free);
owner!(
    /// A TLS session kept for client-side resumption.
    Session, ffi::SSL_SESSION, ffi::SSL_SESSION_free
);

unsafe fn bio_free(bio: *mut ffi::BIO) {
    BIO_free(bio);
}

// SAFETY: an SSL_CTX is safe to share between threads as long as it is not mutated, and
// conntls never mutates one after the generation holding it is published.
unsafe impl Send for SslCtx {}
unsafe impl Sync for SslCtx {}
// SAFETY: an SSL is used by one thread at a time (the caller's hand-off orders the uses).
unsafe impl Send for Ssl {}
// SAFETY: an X509_STORE locks its own lookups; conntls never changes one once it is in use.
unsafe impl Send for X509Store {}
unsafe impl Sync for X509Store {}
// SAFETY: sessions are reference counted with atomic counts and immutable once issued.
unsafe impl Send for Session {}
unsafe impl Sync for Session {}

impl Session {
    /// Another reference to the same session.
    pub fn share(&self) -> Session {
        unsafe { ffi::SSL_SESSION_up_ref(self.as_ptr()) };
        Session(self.0)
    }
}


impl X509Store {
    /// A new reference to the store, for a call that takes ownership of one.
    pub fn share_raw(&self) -> *mut ffi::X509_STORE {
        unsafe { X509_STORE_up_ref(self.as_ptr()) };
        self.as_ptr()
    }
}

/// A read-only memory BIO over `data`, which must outlive it.
pub fn mem_bio(data: &[u8]) -> Bio {
    let len = c_int::try_from(data.len()).unwrap_or(c_int::MAX);
    Bio::from_raw(unsafe { ffi::BIO_new_mem_buf(data.as_ptr().cast(), len) })
        .expect("BIO_new_mem_buf only fails when out of memory")
}

/// Every certificate in a PEM buffer, in order. Non-certificate blocks end the list.
pub fn pem_certificates(data: &[u8]) -> Vec<X509> {
    let bio = mem_bio(data);
    let mut certs = Vec::new();
    while let Some(cert) = X509::from_raw(unsafe {
        ffi::PEM_read_bio_X509(bio.as_ptr(), std::ptr::null_mut(), None, std::ptr::null_mut())
    }) {
        certs.push(cert);
    }
    // Running off the end of the buffer leaves a "no start line" entry behind.
    clear_error_queue();
    certs
}

struct Passphrase<'a> {
    value: Option<&'a [u8]>,
    asked: bool,
}

unsafe extern "C" fn passphrase_cb(buf: *mut c_char, size: c_int, _rw: c_int, u: *mut c_void) -> c_int {
    let state = &mut *(u as *mut Passphrase);
    state.asked = true;
    let Some(pass) = state.value else { return -1 };
    let n = pass.len();
    if n > size as usize {
        return -1;
    }
    std::ptr::copy_nonoverlapping(pass.as_ptr().cast(), buf, n);
    n as c_int
}

/// DH parameters from PEM ("DH PARAMETERS" or X9.42), through OpenSSL 3's decoders
/// rather than the deprecated DH API; None when there are none.
pub fn pem_dh_parameters(data: &[u8]) -> Option<PKey> {
    let bio = mem_bio(data);
    let params = PKey::from_raw(unsafe { PEM_read_bio_Parameters(bio.as_ptr(), std::ptr::null_mut()) });
    clear_error_queue();
    params.filter(|p| unsafe { ffi::EVP_PKEY_is_a(p.as_ptr(), c"DH".as_ptr()) } == 1)
}

pub enum KeyError {
    /// The key is encrypted and the passphrase was missing or wrong.
    Passphrase,
    /// No private key in the data.
    NotPem,
}

/// Parses a PEM private key. The passphrase callback never prompts on a terminal.
pub fn pem_private_key(data: &[u8], passphrase: Option<&[u8]>) -> Result<PKey, KeyError> {
    let bio = mem_bio(data);
    let mut state = Passphrase { value: passphrase, asked: false };
    let key = PKey::from_raw(unsafe {
        ffi::PEM_read_bio_PrivateKey(
            bio.as_ptr(),
            std::ptr::null_mut(),
            Some(passphrase_cb),
            (&mut state as *mut Passphrase).cast(),
        )
    });
    clear_error_queue();
    match key {
        Some(key) => Ok(key),
        None if state.asked => Err(KeyError::Passphrase),
        None => Err(KeyError::NotPem),
    }
}

pub fn ctx_ctrl(ctx: &SslCtx, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    unsafe { ffi::SSL_CTX_ctrl(ctx.as_ptr(), cmd, larg, parg) }
}

/// A static C string from OpenSSL as &str ("" for NULL).
pub fn static_str(ptr: *const c_char) -> &'static str {
    if ptr.is_null() {
        return "";
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap_or("")
}

/// The PEM text of a certificate.
pub fn certificate_pem(cert: &X509) -> Vec<u8> {
    let bio = Bio::from_raw(unsafe { ffi::BIO_new(ffi::BIO_s_mem()) }).expect("out of memory");
    let mut out = Vec::new();
    unsafe {
        if ffi::PEM_write_bio_X509(bio.as_ptr(), cert.as_ptr()) == 1 {
            let mut data: *mut c_char = std::ptr::null_mut();
            let len = ffi::BIO_ctrl(bio.as_ptr(), BIO_CTRL_INFO, 0, (&mut data as *mut *mut c_char).cast());
            if len > 0 && !data.is_null() {
                out.extend_from_slice(std::slice::from_raw_parts(data as *const u8, len as usize));
            }
        }
    }
    clear_error_queue();
    out
}

/// When a certificate expires, in seconds since the epoch.
pub fn not_after(cert: &X509) -> Option<i64> {
    let time = unsafe { ffi::X509_getm_notAfter(cert.as_ptr()) };
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if time.is_null() || unsafe { ASN1_TIME_to_tm(time, &mut tm) } != 1 {
        clear_error_queue();
        return None;
    }
    Some(unsafe { libc::timegm(&mut tm) })
}

/// A certificate's serial number in upper-case hex (as Valkey's INFO shows it).
pub fn serial_hex(cert: &X509) -> Option<String> {
    unsafe {
        let bn = ffi::ASN1_INTEGER_to_BN(ffi::X509_get_serialNumber(cert.as_ptr()), std::ptr::null_mut());
        if bn.is_null() {
            clear_error_queue();
            return None;
        }
        let hex = ffi::BN_bn2hex(bn);
        ffi::BN_free(bn);
        if hex.is_null() {
            clear_error_queue();
            return None;
        }
        let text = CStr::from_ptr(hex).to_string_lossy().into_owned();
        ffi::OPENSSL_free(hex.cast());
        Some(text)
    }
}

/// The numeric id of a subject field name such as "CN" or "O"; None when OpenSSL knows no
/// such name.
pub fn field_nid(name: &str) -> Option<c_int> {
    let name = std::ffi::CString::new(name).ok()?;
    let nid = unsafe { OBJ_txt2nid(name.as_ptr()) };
    clear_error_queue();
    (nid != ffi::NID_undef).then_some(nid)
}

/// The bytes of the first subject field `nid` of a certificate; None when it has none.
pub fn subject_field(cert: &X509, nid: c_int) -> Option<Vec<u8>> {
    let field = unsafe {
        let subject = ffi::X509_get_subject_name(cert.as_ptr());
        let at = if subject.is_null() { -1 } else { X509_NAME_get_index_by_NID(subject, nid, -1) };
        let data = if at < 0 { std::ptr::null() } else { X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)) };
        let bytes = if data.is_null() { std::ptr::null() } else { ASN1_STRING_get0_data(data) };
        (!bytes.is_null()).then(|| std::slice::from_raw_parts(bytes, ASN1_STRING_length(data).max(0) as usize).to_vec())
    };
    clear_error_queue();
    field
}

/// The entries of one kind (ffi::GEN_URI, GEN_DNS or GEN_EMAIL: the text kinds) of a
/// certificate's subject alternative names, in the certificate's order, as bytes: an
/// embedded NUL stays, for the caller to see.
pub fn subject_alt_names(cert: &X509, kind: c_int) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    unsafe {
        let names: *mut ffi::stack_st_GENERAL_NAME =
            ffi::X509_get_ext_d2i(cert.as_ptr(), ffi::NID_subject_alt_name, std::ptr::null_mut(), std::ptr::null_mut()).cast();
        if !names.is_null() {
            let stack = names.cast::<ffi::OPENSSL_STACK>();
            for i in 0..ffi::OPENSSL_sk_num(stack) {
                let name = ffi::OPENSSL_sk_value(stack, i).cast::<ffi::GENERAL_NAME>();
                if name.is_null() || (*name).type_ != kind {
                    continue;
                }
                let text = (*name).d.cast::<ffi::ASN1_STRING>();
                let bytes = if text.is_null() { std::ptr::null() } else { ASN1_STRING_get0_data(text) };
                found.push(if bytes.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(bytes, ASN1_STRING_length(text).max(0) as usize).to_vec()
                });
            }
            GENERAL_NAMES_free(names);
        }
    }
    clear_error_queue();
    found
}

fn now() -> libc::time_t {
    unsafe { libc::time(std::ptr::null_mut()) }
}

/// Why a certificate is not valid at this moment; None when it is.
pub fn not_valid_now(cert: &X509) -> Option<&'static str> {
    let (before, after) = unsafe { (ffi::X509_getm_notBefore(cert.as_ptr()), ffi::X509_getm_notAfter(cert.as_ptr())) };
    let result = if before.is_null() || after.is_null() {
        Some("it has no validity period")
    } else {
        // -1, 0 or 1 as the time is before, at or after now; -2 when it cannot be read
        // (a time that parses but names no moment, such as month 13).
        let now = now();
        match unsafe { (ASN1_TIME_cmp_time_t(before, now), ASN1_TIME_cmp_time_t(after, now)) } {
            (-2, _) | (_, -2) => Some("its validity period cannot be read"),
            (1, _) => Some("not valid yet"),
            (_, -1) => Some("expired"),
            _ => None,
        }
    };
    clear_error_queue();
    result
}
