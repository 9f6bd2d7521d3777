//! memcached over TLS on loopback, for tests/memcached.rs and tests/debian_package.rs: a
//! server started with the test certificates, and tests/memcached_client.py's modes
//! against it.

use std::path::Path;
use std::process::Command;

use super::servers::{free_port, ServerProcess};
use super::{certs, root};

/// `binary` (a memcached) serving TLS on a free loopback port with `cert`/`key` and
/// `extra` options.
pub fn start(binary: &Path, cert: &Path, key: &Path, extra: &[&str]) -> ServerProcess {
    let port = free_port();
    let mut args: Vec<String> = ["-u", "root", "-U", "0", "-l", "127.0.0.1", "-Z"].map(String::from).to_vec();
    args.extend(["-p".into(), port.to_string(), "-o".into(), format!("ssl_chain_cert={},ssl_key={}", cert.display(), key.display())]);
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::start_plain(binary, port, &args)
}

/// tests/memcached_client.py MODE against `server`, trusting the test CA: its output
/// (the test fails when the client does).
pub fn client(server: &ServerProcess, mode: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(root().join("tests/memcached_client.py"))
        .args([mode, &server.port.to_string(), &certs().join("ca.crt").display().to_string()])
        .args(args)
        .output()
        .expect("run tests/memcached_client.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "memcached_client.py {mode}: {text}{}\n{}", String::from_utf8_lossy(&out.stderr), server.logs());
    text
}

/// The number after `name` in the client's output.
pub fn count(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
