//! Contexts and their generations.
//!
//! A generation is a pair of SSL_CTX (server side, client side) built completely from one
//! snapshot of the options and of the files they name, then never changed. The context
//! publishes generations through an atomic pointer swap (arc-swap): a new connection takes
//! the live one and keeps it until freed, so no handshake ever sees a half-changed SSL_CTX.
//! Reloads are serialized among themselves only; connection creation never waits for them.
//!
//! Resumption across reloads: ticket keys and the session id context belong to the trust
//! settings (CA and auth-clients), not to a generation, and carry over while those stay.

use std::collections::HashMap;
use std::ffi::{c_int, c_long, c_void, CString};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use openssl_sys as ffi;

use crate::config::{AuthClients, Config, Options};
use crate::fork::Lock;
use crate::liveness::Liveness;
use crate::ossl::{self, KeyError, Session, SslCtx, X509Store, X509};
use crate::sources::Sources;

/// Secrets tied to the trust settings, carried from generation to generation.
#[derive(Clone)]
struct Trust {
    digest: [u8; 32],
    ticket_keys: [u8; 80],
    session_id_context: [u8; 32],
    /// Grows each time the trust settings change; client sessions of an older epoch are
    /// not offered again.
    epoch: u64,
}

impl Trust {
    fn new(digest: [u8; 32], epoch: u64) -> Result<Trust, String> {
        Ok(Trust {
            digest,
            ticket_keys: ossl::random_bytes()?,
            session_id_context: ossl::random_bytes()?,
            epoch,
        })
    }
}

/// What INFO-style monitoring wants to know about a set of certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertFacts {
    /// The earliest expiry among them, seconds since the epoch (0 when there are none).
    pub not_after: i64,
    /// The serial number (upper-case hex) of the one that expires first.
    pub serial: String,
    pub count: usize,
}

impl CertFacts {
    fn of(certs: &[X509]) -> CertFacts {
        let mut facts = CertFacts { count: certs.len(), ..CertFacts::default() };
        for cert in certs {
            if let Some(t) = ossl::not_after(cert) {
                if facts.not_after == 0 || t < facts.not_after {
                    facts.not_after = t;
                    facts.serial = ossl::serial_hex(cert).unwrap_or_default();
                }
            }
        }
        facts
    }
}

/// Which certificates `Generation::cert_facts` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertRole {
    /// The server's own (cert-file).
    Server = 0,
    /// The one client connections present (client-cert-file, else cert-file).
    Client = 1,
    /// The trusted CAs (ca-cert-file and ca-cert-dir).
    Ca = 2,
}

/// A complete, immutable set of settings. Connections pin the one they were created with.
pub struct Generation {
    pub number: u64,
    /// None when the options name no server certificate: the context is client-only.
    pub server: Option<SslCtx>,
    pub client: SslCtx,
    pub liveness: Liveness,
    pub session_caching: bool,
    /// Client connections check the certificate against their server_name (else it is
    /// only sent as SNI).
    pub verify_server_name: bool,
    pub trust_epoch: u64,
    /// Indexed by CertRole.
    cert_facts: [CertFacts; 3],
    source_digest: [u8; 32],
}

impl Generation {
    pub fn cert_facts(&self, role: CertRole) -> &CertFacts {
        &self.cert_facts[role as usize]
    }
}

/// Everything connections are made from (conn_tls_ctx): the live generation of
/// certificates and settings, swapped atomically by reloads, and the client session store.
pub struct Context {
    live: ArcSwap<Generation>,
    /// Held by reloads only, to serialize them; it also keeps the trust secrets. (A fork
    /// waits for a reload running on another thread: see `crate::fork`.)
    reload_lock: Lock<Trust>,
    sessions: Arc<ClientSessions>,
}

impl Context {
    pub fn new(config: &Config) -> Result<Context, String> {
        let sources = Sources::read(config.snapshot())?;
        let trust = Trust::new(sources.trust_digest(), 1)?;
        let generation = build(&sources, &trust, 1)?;
        Ok(Context {
            live: ArcSwap::from_pointee(generation),
            sessions: Arc::new(ClientSessions::new(trust.epoch)),
            reload_lock: Lock::new(trust),
        })
    }

    /// Builds a new generation and swaps it in; Ok(false) when `only_if_changed` and nothing
    /// changed. On error nothing changes.
    pub fn reload(&self, config: &Config, only_if_changed: bool) -> Result<bool, String> {
        let sources = Sources::read(config.snapshot())?;
        let number = {
            let mut trust = self.reload_lock.lock();
            let live = self.live.load_full();
            if only_if_changed && sources.digest() == live.source_digest {
                return Ok(false);
            }
            let trust_digest = sources.trust_digest();
            let next_trust =
                if trust_digest == trust.digest { trust.clone() } else { Trust::new(trust_digest, trust.epoch + 1)? };
            let generation = build(&sources, &next_trust, live.number + 1)?;
            if next_trust.epoch != trust.epoch {
                self.sessions.reset(next_trust.epoch);
            }
            *trust = next_trust;
            self.live.store(Arc::new(generation));
            live.number + 1
        };
        // Logged once the lock is given back: the callback never runs inside a fork section.
        log::info!("conntls: context generation {number} is live");
        Ok(true)
    }

    /// The live generation.
    pub fn current(&self) -> Arc<Generation> {
        self.live.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.live.load().number
    }

    pub fn sessions(&self) -> &Arc<ClientSessions> {
        &self.sessions
    }
}

fn build(src: &Sources, trust: &Trust, number: u64) -> Result<Generation, String> {
    ossl::clear_error_queue();
    let o = &src.options;
    let cas = ca_certificates(src)?;
    let store = trust_store(&cas)?;
    let (server, server_leaf) = match (o.is_set("cert-file"), o.is_set("key-file")) {
        (true, true) => {
            let (ctx, leaf) = build_server(src, trust, store.as_ref())?;
            (Some(ctx), Some(leaf))
        }
        (false, false) => (None, None),
        (true, false) => return Err("cert-file is set but key-file is not".into()),
        (false, true) => return Err("key-file is set but cert-file is not".into()),
    };
    let (client, client_leaf) = build_client(src, store.as_ref())?;
    let cert_facts = [
        CertFacts::of(server_leaf.as_slice()),
        CertFacts::of(client_leaf.as_slice()),
        CertFacts::of(&cas),
    ];
    Ok(Generation {
        number,
        server,
        client,
        liveness: Liveness { user_timeout_ms: o.number("tcp-user-timeout"), keepalive_s: o.number("tcp-keepalive") },
        session_caching: o.flag("session-caching"),
        verify_server_name: o.flag("verify-server-name"),
        trust_epoch: trust.epoch,
        cert_facts,
        source_digest: src.digest(),
    })
}

/// Every certificate in ca-cert-file and in the files of ca-cert-dir; an error when either
/// is set but holds none, or holds one outside its validity period (it would fail every
/// chain: better said now than per handshake).
fn ca_certificates(src: &Sources) -> Result<Vec<X509>, String> {
    let mut certs = Vec::new();
    for option in ["ca-cert-file", "ca-cert-dir"] {
        let Some(files) = src.files(option) else { continue };
        let found: Vec<X509> = files.iter().flat_map(|(_, data)| ossl::pem_certificates(data)).collect();
        if found.is_empty() {
            return Err(format!("{option} '{}': not PEM (no certificate in it)", src.shown(option)));
        }
        if let Some(why) = found.iter().find_map(ossl::not_valid_now) {
            return Err(format!("{option} '{}': a CA certificate is not valid now ({why})", src.shown(option)));
        }
        certs.extend(found);
    }
    Ok(certs)
}

/// A store of the CA certificates, None when none are configured.
fn trust_store(certs: &[X509]) -> Result<Option<X509Store>, String> {
    if certs.is_empty() {
        return Ok(None);
    }
    let store = X509Store::from_raw(unsafe { ffi::X509_STORE_new() }).ok_or("out of memory")?;
    for cert in certs {
        unsafe { ffi::X509_STORE_add_cert(store.as_ptr(), cert.as_ptr()) };
    }
    ossl::clear_error_queue();
    Ok(Some(store))
}

/// An SSL_CTX with the settings both sides share.
fn new_ctx(method: *const ffi::SSL_METHOD, o: &Options) -> Result<SslCtx, String> {
    let ctx = SslCtx::from_raw(unsafe { ffi::SSL_CTX_new(method) }).ok_or_else(|| ossl::with_queue("SSL_CTX_new failed"))?;
    let p = ctx.as_ptr();
    let protocols = o.protocols();
    let version = [ffi::TLS1_VERSION, ffi::TLS1_1_VERSION, ffi::TLS1_2_VERSION, ffi::TLS1_3_VERSION];
    let lowest = (0..4).find(|i| protocols & (1 << i) != 0).unwrap_or(2);
    let highest = (0..4).rev().find(|i| protocols & (1 << i) != 0).unwrap_or(3);
    let no_flags = [ffi::SSL_OP_NO_TLSv1, ffi::SSL_OP_NO_TLSv1_1, ffi::SSL_OP_NO_TLSv1_2, ffi::SSL_OP_NO_TLSv1_3];
    // Versions inside the range but not listed are switched off one by one, as Valkey does.
    let mut options = ffi::SSL_OP_NO_COMPRESSION | ffi::SSL_OP_NO_RENEGOTIATION | ffi::SSL_OP_IGNORE_UNEXPECTED_EOF;
    for (i, no_flag) in no_flags.iter().enumerate() {
        if (lowest..=highest).contains(&i) && protocols & (1 << i) == 0 {
            options |= no_flag;
        }
    }
    if o.flag("prefer-server-ciphers") {
        options |= ffi::SSL_OP_CIPHER_SERVER_PREFERENCE;
    }
    unsafe {
        ffi::SSL_CTX_set_min_proto_version(p, version[lowest]);
        ffi::SSL_CTX_set_max_proto_version(p, version[highest]);
        ffi::SSL_CTX_set_options(p, options);
        // The socket BIO never asks for a retry, but a moved buffer would be accepted anyway.
        // With release-buffers, idle connections give their OpenSSL buffers back: about
        // 11 KB less per idle client, for a malloc and a free of a record buffer per
        // record each way (about 3% more instructions per small request; BENCHMARKS.md).
        let release = if o.flag("release-buffers") { ffi::SSL_MODE_RELEASE_BUFFERS } else { 0 };
        ffi::SSL_CTX_set_mode(p, release | ffi::SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        // No read-ahead: then SSL_pending counts everything OpenSSL holds, and a caller that
        // reads while conn_tls_pending_read > 0 can never spin on a partial record.
    }
    if let Some(list) = o.get("ciphers") {
        let c = CString::new(list).map_err(|_| "option 'ciphers': contains a NUL byte")?;
        if unsafe { ffi::SSL_CTX_set_cipher_list(p, c.as_ptr()) } != 1 {
            return Err(ossl::with_queue(format!("option 'ciphers': no usable cipher in '{list}'")));
        }
    }
    if let Some(list) = o.get("groups") {
        set_groups(&ctx, list)?;
    }
    if let Some(list) = o.get("ciphersuites") {
        let c = CString::new(list).map_err(|_| "option 'ciphersuites': contains a NUL byte")?;
        if unsafe { ffi::SSL_CTX_set_ciphersuites(p, c.as_ptr()) } != 1 {
            return Err(ossl::with_queue(format!("option 'ciphersuites': no usable suite in '{list}'")));
        }
    }
    Ok(ctx)
}

/// The key-exchange groups (Valkey's tls-groups; SSL_CTX_set1_groups_list's syntax, which
/// OpenSSL 3.5 extends with "?", "*", "-", "/" and DEFAULT). When OpenSSL refuses the
/// list, each group in it is tried alone to name the one this OpenSSL does not know.
fn set_groups(ctx: &SslCtx, list: &str) -> Result<(), String> {
    let set = |ctx: &SslCtx, groups: &str| {
        let Ok(c) = CString::new(groups) else { return false };
        ossl::ctx_ctrl(ctx, ffi::SSL_CTRL_SET_GROUPS_LIST, 0, c.as_ptr() as *mut c_void) == 1
    };
    if set(ctx, list) {
        return Ok(());
    }
    ossl::clear_error_queue();
    // A group marked "?" may be unknown by design; DEFAULT is a keyword.
    let unknown = list
        .split([':', '/'])
        .filter(|g| !g.starts_with('?') && !g.is_empty())
        .map(|g| g.trim_start_matches(['*', '-']))
        .filter(|g| *g != "DEFAULT")
        .find(|g| !set(ctx, g));
    ossl::clear_error_queue();
    Err(match unknown {
        Some(group) => format!("option 'groups': unknown or unsupported group '{group}' in '{list}' ({})", ossl::openssl_version().to_string_lossy()),
        None => format!("option 'groups': OpenSSL refuses the list '{list}'"),
    })
}

/// Loads a certificate chain and its key into `ctx`; returns the leaf certificate.
fn load_identity(ctx: &SslCtx, src: &Sources, cert_opt: &str, key_opt: &str, pass_opt: &str) -> Result<X509, String> {
    let (cert_path, key_path) = (src.shown(cert_opt), src.shown(key_opt));
    let mut certs = ossl::pem_certificates(src.file(cert_opt).unwrap_or_default()).into_iter();
    let Some(leaf) = certs.next() else {
        return Err(format!("{cert_opt} '{cert_path}': not PEM (no certificate in it)"));
    };
    if let Some(why) = ossl::not_valid_now(&leaf) {
        return Err(format!("{cert_opt} '{cert_path}': certificate is not valid now ({why})"));
    }
    let key = match ossl::pem_private_key(src.file(key_opt).unwrap_or_default(), src.options.bytes(pass_opt)) {
        Ok(key) => key,
        Err(KeyError::Passphrase) => {
            return Err(format!("{key_opt} '{key_path}': wrong or missing passphrase ({pass_opt})"))
        }
        Err(KeyError::NotPem) => return Err(format!("{key_opt} '{key_path}': not PEM (no private key in it)")),
    };
    let p = ctx.as_ptr();
    unsafe {
        if ffi::SSL_CTX_use_certificate(p, leaf.as_ptr()) != 1 {
            return Err(ossl::with_queue(format!("{cert_opt} '{cert_path}': certificate rejected")));
        }
        for cert in certs {
            if ossl::ctx_ctrl(ctx, ossl::SSL_CTRL_CHAIN_CERT, 1, cert.as_ptr().cast()) != 1 {
                return Err(ossl::with_queue(format!("{cert_opt} '{cert_path}': chain certificate rejected")));
            }
        }
        if ffi::SSL_CTX_use_PrivateKey(p, key.as_ptr()) != 1 || ffi::SSL_CTX_check_private_key(p) != 1 {
            return Err(ossl::with_queue(format!(
                "{key_opt} '{key_path}': key does not match the certificate in {cert_opt} '{cert_path}'"
            )));
        }
    }
    Ok(leaf)
}

/// The system's trusted CAs, read once per process: parsing the system bundle takes about
/// 30 ms, which every reload would otherwise pay again. (A change to the system bundle is
/// seen after a restart.)
fn system_store() -> Result<&'static X509Store, String> {
    static STORE: OnceLock<Result<X509Store, String>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let store = X509Store::from_raw(unsafe { ffi::X509_STORE_new() }).ok_or("out of memory")?;
            unsafe { ffi::X509_STORE_set_default_paths(store.as_ptr()) };
            ossl::clear_error_queue();
            Ok(store)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn use_store(ctx: &SslCtx, store: &X509Store) {
    unsafe { ffi::SSL_CTX_set_cert_store(ctx.as_ptr(), store.share_raw()) };
}

/// The server SSL_CTX and its certificate.
fn build_server(src: &Sources, trust: &Trust, store: Option<&X509Store>) -> Result<(SslCtx, X509), String> {
    let o = &src.options;
    let ctx = new_ctx(unsafe { ffi::TLS_server_method() }, o)?;
    let leaf = load_identity(&ctx, src, "cert-file", "key-file", "key-file-pass")?;
    let p = ctx.as_ptr();
    let verify = match o.auth_clients() {
        AuthClients::No => ffi::SSL_VERIFY_NONE,
        AuthClients::Yes => ffi::SSL_VERIFY_PEER | ffi::SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        AuthClients::Optional => ffi::SSL_VERIFY_PEER,
    };
    // Clients must authenticate and nothing could check them: refused. `optional` without
    // a CA is what servers accept at runtime (CONFIG SET tls-auth-clients optional): a
    // client without a certificate connects, one that presents a certificate fails its
    // verification, as OpenSSL does with an empty trust store.
    if o.auth_clients() == AuthClients::Yes && store.is_none() {
        return Err(format!(
            "auth-clients is {} but no CA is set to check clients with (ca-cert-file or ca-cert-dir)",
            o.get("auth-clients").unwrap_or_default()
        ));
    }
    if let Some(store) = store {
        use_store(&ctx, store);
    }
    if let Some(data) = src.file("dh-params-file") {
        let Some(params) = ossl::pem_dh_parameters(data) else {
            return Err(format!("dh-params-file '{}': not PEM DH parameters", src.shown("dh-params-file")));
        };
        // On success the context owns the parameters.
        let raw = params.into_raw();
        if unsafe { ffi::SSL_CTX_set0_tmp_dh_pkey(p, raw) } != 1 {
            unsafe { ffi::EVP_PKEY_free(raw) };
            return Err(ossl::with_queue(format!("dh-params-file '{}': parameters rejected", src.shown("dh-params-file"))));
        }
    } else {
        unsafe { ffi::SSL_CTX_set_dh_auto(p, 1) };
    }
    unsafe {
        ffi::SSL_CTX_set_verify(p, verify, None);
        ffi::SSL_CTX_set_session_id_context(p, trust.session_id_context.as_ptr(), trust.session_id_context.len() as _);
        if o.flag("session-caching") {
            ffi::SSL_CTX_set_session_cache_mode(p, ffi::SSL_SESS_CACHE_SERVER);
            ffi::SSL_CTX_sess_set_cache_size(p, o.number("session-cache-size").unwrap_or(0) as c_long);
            ossl::SSL_CTX_set_timeout(p, o.number("session-cache-timeout").unwrap_or(300) as c_long);
            let keys = trust.ticket_keys;
            ossl::ctx_ctrl(&ctx, ossl::SSL_CTRL_SET_TLSEXT_TICKET_KEYS, keys.len() as c_long, keys.as_ptr() as *mut c_void);
        } else {
            disable_resumption(&ctx);
        }
    }
    ossl::clear_error_queue();
    Ok((ctx, leaf))
}

fn disable_resumption(ctx: &SslCtx) {
    unsafe {
        ffi::SSL_CTX_set_session_cache_mode(ctx.as_ptr(), ffi::SSL_SESS_CACHE_OFF);
        ffi::SSL_CTX_set_options(ctx.as_ptr(), ffi::SSL_OP_NO_TICKET);
        ffi::SSL_CTX_set_num_tickets(ctx.as_ptr(), 0);
    }
}

/// The client SSL_CTX and the certificate it presents, if any.
fn build_client(src: &Sources, store: Option<&X509Store>) -> Result<(SslCtx, Option<X509>), String> {
    let o = &src.options;
    let ctx = new_ctx(unsafe { ffi::TLS_client_method() }, o)?;
    // Outgoing connections present client-cert-file when given, else the server's own
    // certificate, as Valkey does for replication and the cluster bus.
    let set = |name| o.is_set(name);
    let leaf = match (set("client-cert-file"), set("client-key-file"), set("cert-file"), set("key-file")) {
        (true, true, _, _) => Some(load_identity(&ctx, src, "client-cert-file", "client-key-file", "client-key-file-pass")?),
        (true, false, _, _) => return Err("client-cert-file is set but client-key-file is not".into()),
        (false, true, _, _) => return Err("client-key-file is set but client-cert-file is not".into()),
        (false, false, true, true) => Some(load_identity(&ctx, src, "cert-file", "key-file", "key-file-pass")?),
        _ => None,
    };
    let p = ctx.as_ptr();
    // No CA configured: trust what the system trusts.
    use_store(&ctx, match store {
        Some(store) => store,
        None => system_store()?,
    });
    unsafe {
        ffi::SSL_CTX_set_verify(p, ffi::SSL_VERIFY_PEER, None);
        if o.flag("session-caching") {
            ffi::SSL_CTX_set_session_cache_mode(p, ffi::SSL_SESS_CACHE_CLIENT | ffi::SSL_SESS_CACHE_NO_INTERNAL_STORE);
            ffi::SSL_CTX_sess_set_new_cb(p, Some(new_session_cb));
        } else {
            disable_resumption(&ctx);
        }
    }
    ossl::clear_error_queue();
    Ok((ctx, leaf))
}

/// What a client connection tells the new-session callback: where to keep its sessions.
pub struct SessionSlot {
    pub sessions: Arc<ClientSessions>,
    pub name: Option<String>,
    pub epoch: u64,
}

pub fn session_slot_index() -> c_int {
    static INDEX: OnceLock<c_int> = OnceLock::new();
    *INDEX.get_or_init(|| unsafe { ffi::SSL_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) })
}

unsafe extern "C" fn new_session_cb(ssl: *mut ffi::SSL, session: *mut ffi::SSL_SESSION) -> c_int {
    let slot = ffi::SSL_get_ex_data(ssl, session_slot_index()) as *const SessionSlot;
    if slot.is_null() || ossl::SSL_SESSION_is_resumable(session) == 0 {
        return 0;
    }
    // The store keeps a copy: freeing a connection that did not shut down marks its own
    // session not resumable, and that must not spoil the one kept for the next connection.
    if let Some(copy) = Session::from_raw(ossl::SSL_SESSION_dup(session)) {
        let slot = &*slot;
        slot.sessions.keep(slot.epoch, &slot.name, copy);
    }
    0
}

/// Newest session per server name, for client connections to resume with.
pub struct ClientSessions {
    inner: Lock<(u64, HashMap<Option<String>, Session>)>,
}

/// A bound on distinct server names remembered, so a client talking to many hosts stays small.
const MAX_SERVER_NAMES: usize = 4096;

impl ClientSessions {
    fn new(epoch: u64) -> ClientSessions {
        ClientSessions { inner: Lock::new((epoch, HashMap::new())) }
    }

    fn reset(&self, epoch: u64) {
        let mut inner = self.inner.lock();
        *inner = (epoch, HashMap::new());
    }

    /// The session to offer for `name`, if one from the current trust epoch is kept.
    pub fn offer(&self, epoch: u64, name: &Option<String>) -> Option<Session> {
        let inner = self.inner.lock();
        if inner.0 != epoch {
            return None;
        }
        inner.1.get(name).map(Session::share)
    }

    /// Keeps `session` as the newest for `name`, unless it belongs to an older trust epoch.
    fn keep(&self, epoch: u64, name: &Option<String>, session: Session) {
        let mut inner = self.inner.lock();
        if inner.0 != epoch {
            return;
        }
        if inner.1.len() >= MAX_SERVER_NAMES && !inner.1.contains_key(name) {
            inner.1.clear();
        }
        inner.1.insert(name.clone(), session);
    }
}
