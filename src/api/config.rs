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
/// ciphersuites, prefer-server-ciphers, session-caching, session-cache-size,
/// session-cache-timeout, auth-clients (no/yes/optional; default yes), tcp-user-timeout (ms)
/// and tcp-keepalive (s). An empty value unsets a file, passphrase or cipher option.
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
            let value = ffi::str_arg(value, "value")?.ok_or_else(|| format!("option '{name}': value is NULL"))?;
            cfg.set(name, value)
        })();
        match result {
            Ok(()) => CONN_TLS_OK,
            Err(msg) => {
                ffi::write_message(err, errlen, &msg);
                CONN_TLS_EINVAL
            }
        }
    })
}

/// Frees a configuration. NULL is accepted and ignored. Contexts built from it are not
/// affected.
#[no_mangle]
pub unsafe extern "C" fn conn_tls_config_free(cfg: *mut Config) {
    boundary!((), ffi::free_handle(cfg))
}
