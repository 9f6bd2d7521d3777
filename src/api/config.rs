use std::ffi::{c_char, c_int};

use crate::config::Config;
use crate::ffi::{self, boundary, CONN_TLS_EINVAL, CONN_TLS_OK};

/// Makes a configuration holding the defaults (those of Valkey's tls-* options).
///
/// Ownership: the caller owns the result and frees it with conn_tls_config_free.
/// Threads: a configuration may be used from several threads; set and the context calls
/// that read it are serialized inside.
/// Returns NULL only when out of memory.
#[no_mangle]
pub extern "C" fn conn_tls_config_new() -> *mut Config {
    boundary!(std::ptr::null_mut(), ffi::into_handle(Config::default()))
}

/// Sets option `name` to `value`. Names are Valkey's tls-* names without the prefix:
/// cert-file, key-file, key-file-pass, client-cert-file, client-key-file,
/// client-key-file-pass, ca-cert-file, ca-cert-dir, dh-params-file, protocols, ciphers,
/// ciphersuites, groups (key-exchange groups in SSL_CTX_set1_groups_list's syntax, e.g.
/// "X25519MLKEM768:X25519:P-256"; unset: OpenSSL's default, which on OpenSSL 3.5+ prefers
/// the hybrid post-quantum X25519MLKEM768), prefer-server-ciphers, session-caching,
/// session-cache-size, session-cache-timeout, auth-clients (no/yes/optional; default yes),
/// verify-server-name (yes/no; default yes: client connections check the certificate
/// against their server_name; no: it is only sent as SNI), tcp-user-timeout (ms,
/// TCP_USER_TIMEOUT on every new connection) and tcp-keepalive (s: probes after that many
/// idle seconds, then every third of it, three of them; see conn_tls_set_keepalive for how
/// it and the user timeout combine), and release-buffers (yes/no; default yes: a
/// connection gives its OpenSSL record buffers back whenever they are empty, about 11 KB
/// less per idle client; no keeps them, about 3% fewer instructions per small request).
/// An empty value unsets a file, passphrase or cipher option.
///
/// Values are bytes: file options (cert-file, ca-cert-dir...) are paths and take any bytes
/// but NUL, as Linux does, and so do passphrases; every other option is text and must be
/// UTF-8.
///
/// Only syntax is checked here (numbers, yes/no, protocol names); files and cipher strings
/// are checked by conn_tls_ctx_new / conn_tls_ctx_reload.
///
/// Returns CONN_TLS_OK, or CONN_TLS_EINVAL (NULL cfg/name/value, unknown name, malformed
/// value) with a message naming the option in `err`; a rejected value leaves the earlier
/// one in place. `err` may be NULL when `errlen` is 0; the message is truncated to fit and
/// always NUL-terminated. The strings are copied; the caller keeps ownership.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_config_set(
    cfg: *mut Config,
    name: *const c_char,
    value: *const c_char,
    err: *mut c_char,
    errlen: usize,
) -> c_int {
    boundary!(CONN_TLS_EINVAL, {
        let result = (|| {
            let cfg = ffi::handle_ref(cfg).ok_or("cfg is NULL")?;
            let name = ffi::str_arg(name, "name")?.ok_or("name is NULL")?;
            let value = ffi::bytes_arg(value).ok_or_else(|| format!("option '{name}': value is NULL"))?;
            cfg.set(name, value)
        })();
        match result {
            Ok(()) => CONN_TLS_OK,
            Err(msg) => ffi::fail_with(err, errlen, CONN_TLS_EINVAL, &msg),
        }
    })
}

/// Frees a configuration. NULL is accepted and ignored. Contexts built from it are not
/// affected.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_config_free(cfg: *mut Config) {
    boundary!((), ffi::free_handle(cfg))
}
