//! Options, named and spelled like Valkey's `tls-*` settings without the prefix.
//! `set` checks syntax only; files and cipher strings are checked when a context is built.
//!
//! Values are bytes: a file option is a Linux path, which need not be UTF-8, and so is a
//! passphrase. Only options whose value is text (protocols, cipher lists, numbers...)
//! must be UTF-8.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use crate::fork::Lock;

/// How an option's value is checked and read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A file or directory path, any bytes; "" unsets it.
    Path,
    /// A passphrase, any bytes; "" unsets it.
    Secret,
    /// Free text checked later by OpenSSL (cipher lists, groups); "" unsets it.
    Text,
    /// yes / no.
    Bool,
    /// no / yes / optional.
    AuthClients,
    /// A space-separated set of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.
    Protocols,
    /// A non-negative integer that fits in 32 bits.
    Number,
}

/// Every option, with its default (None: unset).
const OPTIONS: &[(&str, Kind, Option<&str>)] = &[
    ("cert-file", Kind::Path, None),
    ("key-file", Kind::Path, None),
    ("key-file-pass", Kind::Secret, None),
    ("client-cert-file", Kind::Path, None),
    ("client-key-file", Kind::Path, None),
    ("client-key-file-pass", Kind::Secret, None),
    ("ca-cert-file", Kind::Path, None),
    ("ca-cert-dir", Kind::Path, None),
    ("dh-params-file", Kind::Path, None),
    ("protocols", Kind::Protocols, Some("TLSv1.2 TLSv1.3")),
    ("ciphers", Kind::Text, None),
    ("ciphersuites", Kind::Text, None),
    ("groups", Kind::Text, None),
    ("prefer-server-ciphers", Kind::Bool, Some("no")),
    ("session-caching", Kind::Bool, Some("yes")),
    ("session-cache-size", Kind::Number, Some("20480")),
    ("session-cache-timeout", Kind::Number, Some("300")),
    ("auth-clients", Kind::AuthClients, Some("yes")),
    ("verify-server-name", Kind::Bool, Some("yes")),
    ("tcp-user-timeout", Kind::Number, None),
    ("tcp-keepalive", Kind::Number, None),
    ("release-buffers", Kind::Bool, Some("yes")),
];

/// Protocol versions as a bit set, one bit per version from TLSv1 (bit 0) to TLSv1.3.
pub const PROTOCOL_NAMES: [&str; 4] = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuthClients {
    No,
    Yes,
    Optional,
}

/// A checked snapshot of every option; what a context generation is built from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Options {
    /// Text options hold UTF-8 (checked by `set`); paths and passphrases any bytes.
    values: BTreeMap<&'static str, Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        let values = OPTIONS
            .iter()
            .filter_map(|(name, _, default)| default.map(|d| (*name, d.as_bytes().to_vec())))
            .collect();
        Options { values }
    }
}

impl Options {
    /// Sets one option after checking its syntax; on error nothing changes.
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), String> {
        let Some(&(key, kind, _)) = OPTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!("unknown option '{name}'"));
        };
        let normalized = normalize(key, kind, value)?;
        match normalized {
            Some(v) => self.values.insert(key, v),
            None => self.values.remove(key),
        };
        Ok(())
    }

    /// The value of a text option as set, or None when unset. (`set` admits only UTF-8
    /// for text options; paths and passphrases are read with `path` and `bytes`.)
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of a file option, or None when unset.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.values.get(name).map(|v| Path::new(OsStr::from_bytes(v)))
    }

    /// The value as bytes (a passphrase), or None when unset.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(Vec::as_slice)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }

    pub fn number(&self, name: &str) -> Option<u32> {
        self.get(name).map(|v| v.parse().expect("checked by set"))
    }

    pub fn auth_clients(&self) -> AuthClients {
        match self.get("auth-clients") {
            Some("yes") => AuthClients::Yes,
            Some("optional") => AuthClients::Optional,
            _ => AuthClients::No,
        }
    }

    /// Bit i set when PROTOCOL_NAMES[i] is enabled.
    pub fn protocols(&self) -> u8 {
        let list = self.get("protocols").unwrap_or_default();
        list.split(' ').filter_map(|p| PROTOCOL_NAMES.iter().position(|n| *n == p)).fold(0, |set, i| set | 1 << i)
    }

    /// Every option as length-prefixed name and value: what a generation's fingerprint is
    /// taken over.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.values {
            for part in [name.as_bytes(), value.as_slice()] {
                out.extend_from_slice(&(part.len() as u64).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }
}

fn normalize(name: &str, kind: Kind, value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if matches!(kind, Kind::Path | Kind::Secret) {
        return Ok((!value.is_empty()).then(|| value.to_vec()));
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return Err(format!("option '{name}': value is not UTF-8 (this option is text)"));
    };
    let bad = |what: &str| Err(format!("option '{name}': {what}, got '{value}'"));
    let text = |v: String| Ok(Some(v.into_bytes()));
    match kind {
        Kind::Path | Kind::Secret => unreachable!("handled above"),
        Kind::Text => Ok((!value.is_empty()).then(|| value.as_bytes().to_vec())),
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" | "no" => text(value.to_ascii_lowercase()),
            _ => bad("expected yes or no"),
        },
        Kind::AuthClients => match value.to_ascii_lowercase().as_str() {
            "yes" | "no" | "optional" => text(value.to_ascii_lowercase()),
            _ => bad("expected no, yes or optional"),
        },
        Kind::Number => match value.trim().parse::<u32>() {
            Ok(n) => text(n.to_string()),
            Err(_) => bad("expected a non-negative integer below 2^32"),
        },
        Kind::Protocols => {
            let mut set = 0u8;
            for word in value.split_ascii_whitespace() {
                let Some(i) = PROTOCOL_NAMES.iter().position(|p| p.eq_ignore_ascii_case(word)) else {
                    return Err(format!(
                        "option '{name}': unknown protocol '{word}' (expected TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"
                    ));
                };
                set |= 1 << i;
            }
            if set == 0 {
                // Valkey's rule: an empty list means the default.
                set = 0b1100;
            }
            let names: Vec<&str> = (0..4).filter(|i| set & (1 << i) != 0).map(|i| PROTOCOL_NAMES[i]).collect();
            text(names.join(" "))
        }
    }
}

/// A set of options to build a context from (conn_tls_config). Internally locked, so a
/// background reload may read it while another thread sets options.
#[derive(Default)]
pub struct Config {
    options: Lock<Options>,
}

impl Config {
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), String> {
        self.options.lock().set(name, value)
    }

    pub fn snapshot(&self) -> Options {
        self.options.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn defaults_follow_valkey() {
        let o = Options::default();
        assert_eq!(o.get("protocols"), Some("TLSv1.2 TLSv1.3"));
        assert_eq!(o.protocols(), 0b1100);
        assert_eq!(o.auth_clients(), AuthClients::Yes);
        assert!(o.flag("session-caching"));
        assert_eq!(o.number("session-cache-size"), Some(20480));
        assert_eq!(o.path("cert-file"), None);
        assert!(o.flag("release-buffers"));
    }

    #[test]
    fn rejected_values_leave_the_old_one() {
        let mut o = Options::default();
        o.set("session-cache-size", b"100").unwrap();
        let err = o.set("session-cache-size", b"-1").unwrap_err();
        assert!(err.contains("session-cache-size"), "{err}");
        assert_eq!(o.number("session-cache-size"), Some(100));
        let err = o.set("protocols", b"TLSv1.2 SSLv3").unwrap_err();
        assert!(err.contains("SSLv3"), "{err}");
        assert_eq!(o.get("protocols"), Some("TLSv1.2 TLSv1.3"));
        assert!(o.set("no-such-thing", b"1").unwrap_err().contains("no-such-thing"));
        assert!(o.set("auth-clients", b"maybe").unwrap_err().contains("auth-clients"));
        assert!(o.set("prefer-server-ciphers", b"true").is_err());
    }

    #[test]
    fn values_are_normalized() {
        let mut o = Options::default();
        o.set("protocols", b"tlsv1.3").unwrap();
        assert_eq!(o.get("protocols"), Some("TLSv1.3"));
        o.set("protocols", b"").unwrap();
        assert_eq!(o.get("protocols"), Some("TLSv1.2 TLSv1.3"));
        o.set("auth-clients", b"OPTIONAL").unwrap();
        assert_eq!(o.auth_clients(), AuthClients::Optional);
        o.set("cert-file", b"/x").unwrap();
        o.set("cert-file", b"").unwrap();
        assert_eq!(o.path("cert-file"), None);
    }

    #[test]
    fn paths_are_bytes_text_is_utf8() {
        let mut o = Options::default();
        o.set("cert-file", b"/tmp/\xff\xfe.crt").unwrap();
        assert_eq!(o.path("cert-file").map(|p| p.as_os_str().as_bytes()), Some(&b"/tmp/\xff\xfe.crt"[..]));
        o.set("key-file-pass", b"\xc3(").unwrap();
        assert_eq!(o.bytes("key-file-pass"), Some(&b"\xc3("[..]));
        let err = o.set("ciphers", b"HIGH\xff").unwrap_err();
        assert!(err.contains("'ciphers'") && err.contains("not UTF-8"), "{err}");
        assert_eq!(o.get("ciphers"), None);
    }
}
