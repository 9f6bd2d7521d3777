//! Interop with real peers: `openssl s_client` against a conntls server and `openssl
//! s_server` against a conntls client, for TLS 1.2 and 1.3, every auth-clients mode, wrong
//! CAs, hostname mismatches, an encrypted key, and resumption (also across a rotation).
mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

/// A process started by this test, killed (by its own PID) if still running when dropped.
struct Started {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Started {
    /// Starts `cmd` (bounded by `timeout 30`) and waits for the stdout line that `ready`
    /// extracts a port from.
    fn spawn(cmd: &mut Command, ready: impl Fn(&str) -> Option<u16>) -> (Started, u16) {
        let mut child = c_env(cmd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Started { child, lines };
        loop {
            let line = started.lines.recv_timeout(std::time::Duration::from_secs(20)).expect("server did not start");
            if let Some(port) = ready(&line) {
                return (started, port);
            }
        }
    }

    /// Everything the process printed after the ready line, once it exits: lines are
    /// taken until the reader thread sees the end of its output, so none is still in
    /// flight when this returns.
    fn output(mut self) -> String {
        let _ = self.child.wait();
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            lines.push(line);
        }
        lines.join("\n")
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn cert(name: &str) -> String {
    certs().join(name).display().to_string()
}

fn peer() -> std::path::PathBuf {
    static PEER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PEER.get_or_init(|| build_c("peer", Link::Shared, &[])).clone()
}

/// A conntls server serving `count` connections; returns it and its port.
fn conntls_server(opts: &[String]) -> (Started, u16) {
    let mut cmd = Command::new("timeout");
    cmd.env_remove("LD_LIBRARY_PATH").arg("30").arg(peer()).arg("server").args(opts);
    Started::spawn(&mut cmd, |l| l.strip_prefix("port ").and_then(|p| p.parse().ok()))
}

fn s_server(args: &[&str]) -> (Started, u16) {
    let mut cmd = Command::new("timeout");
    cmd.args(["30", "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev"]).args(args);
    Started::spawn(&mut cmd, |l| l.strip_prefix("ACCEPT 127.0.0.1:").and_then(|p| p.parse().ok()))
}

/// Runs s_client, sends "hello", returns (success, everything it printed).
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-connect", &format!("127.0.0.1:{port}"), "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn s_client");
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn conntls_client(port: u16, opts: &[String]) -> (bool, String) {
    let out = c_env(Command::new("timeout").arg("30").arg(peer()).arg("client").arg(port.to_string()).args(opts))
        .output()
        .expect("run peer client");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn opts(pairs: &[(&str, String)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn server_opts(auth: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cert-file", cert("server.crt")),
        ("key-file", cert("server.key")),
        ("ca-cert-file", cert("ca.crt")),
        ("auth-clients", auth.to_string()),
    ]
}

const VERIFY: [&str; 2] = ["-verify_return_error", "-verify_hostname"];

fn s_client_verifying(port: u16, extra: &[&str]) -> (bool, String) {
    let ca = cert("ca.crt");
    let mut args = vec!["-CAfile", &ca, VERIFY[0], VERIFY[1], "localhost"];
    args.extend_from_slice(extra);
    s_client(port, &args)
}

#[test]
fn s_client_tls13_and_tls12() {
    for (flag, proto) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let (server, port) = conntls_server(&opts(&server_opts("no")));
        let (ok, out) = s_client_verifying(port, &[flag]);
        assert!(ok && out.contains("echo:hello") && out.contains("Verify return code: 0 (ok)"), "{out}");
        let log = server.output();
        assert!(log.contains(&format!("handshake ok {proto}")) && log.contains("peer-cert=0"), "{log}");
    }
}

#[test]
fn s_client_auth_clients_modes() {
    let (client_crt, client_key) = (cert("client.crt"), cert("client.key"));
    let with_cert = ["-cert", client_crt.as_str(), "-key", client_key.as_str()];
    // (auth-clients, client sends a certificate, handshake expected to succeed)
    for (auth, send_cert, succeeds) in
        [("yes", true, true), ("yes", false, false), ("optional", true, true), ("optional", false, true), ("no", true, true)]
    {
        let (server, port) = conntls_server(&opts(&server_opts(auth)));
        let (_, out) = s_client_verifying(port, if send_cert { &with_cert } else { &[] });
        let log = server.output();
        let case = format!("auth-clients={auth} client-cert={send_cert}");
        if succeeds {
            assert!(out.contains("echo:hello"), "{case}: {out}");
            let sent = send_cert && auth != "no";
            assert!(log.contains("handshake ok") && log.contains("peer-cert=0") != sent, "{case}: {log}");
        } else {
            assert!(!out.contains("echo:hello"), "{case}: {out}");
            assert!(log.contains("handshake error") && log.contains("certificate"), "{case}: {log}");
        }
    }
}

#[test]
fn s_client_rejects_a_server_from_another_ca() {
    let mut o = server_opts("no");
    o[0].1 = cert("other.crt");
    o[1].1 = cert("other.key");
    let (server, port) = conntls_server(&opts(&o));
    let (ok, out) = s_client_verifying(port, &[]);
    assert!(!ok && !out.contains("echo:hello") && out.contains("verify error"), "{out}");
    assert!(server.output().contains("handshake error"));
}

#[test]
fn encrypted_key_with_passphrase() {
    let mut o = server_opts("no");
    o[1].1 = cert("server-enc.key");
    o.push(("key-file-pass", "s3cret".into()));
    let (server, port) = conntls_server(&opts(&o));
    let (ok, out) = s_client_verifying(port, &[]);
    assert!(ok && out.contains("echo:hello"), "{out}");
    assert!(server.output().contains("handshake ok"));
}

#[test]
fn s_client_resumes_across_a_rotation() {
    let mut o = opts(&server_opts("no"));
    o.extend(opts(&[("count", "2".into()), ("rotate-cert", cert("server2.crt")), ("rotate-key", cert("server2.key"))]));
    let (server, port) = conntls_server(&o);
    let sess = scratch_dir().join("session.pem").display().to_string();
    let (ok, first) = s_client_verifying(port, &["-sess_out", &sess]);
    assert!(ok && first.contains("echo:hello") && first.contains("New, TLSv1.3"), "{first}");
    let (ok, second) = s_client_verifying(port, &["-sess_in", &sess]);
    assert!(ok && second.contains("echo:hello") && second.contains("Reused, TLSv1.3"), "{second}");
    let log = server.output();
    assert!(log.contains("reused=0 generation=1") && log.contains("reused=1 generation=2"), "{log}");
}

fn client_opts() -> Vec<(&'static str, String)> {
    vec![
        ("name", "localhost".into()),
        ("ca-cert-file", cert("ca.crt")),
        ("client-cert-file", cert("client.crt")),
        ("client-key-file", cert("client.key")),
    ]
}

#[test]
fn client_against_s_server_tls13_and_tls12() {
    for (flag, proto) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let (crt, key) = (cert("server.crt"), cert("server.key"));
        let (server, port) = s_server(&["-cert", &crt, "-key", &key, "-naccept", "1", flag]);
        let (ok, out) = conntls_client(port, &opts(&client_opts()));
        assert!(ok && out.contains(&format!("handshake ok {proto}")) && out.contains("reply: gnip"), "{out}");
        drop(server);
    }
}

#[test]
fn client_presents_its_certificate_when_asked() {
    let (crt, key, ca) = (cert("server.crt"), cert("server.key"), cert("ca.crt"));
    let args = ["-cert", crt.as_str(), "-key", key.as_str(), "-CAfile", ca.as_str(), "-Verify", "1", "-verify_return_error", "-naccept", "1"];
    let (server, port) = s_server(&args);
    let (ok, out) = conntls_client(port, &opts(&client_opts()));
    assert!(ok && out.contains("reply: gnip"), "{out}");
    drop(server);
    // Without a client certificate, the same server refuses.
    let (server, port) = s_server(&args);
    let (ok, out) = conntls_client(port, &opts(&[("name", "localhost".into()), ("ca-cert-file", ca.clone())]));
    assert!(!ok && out.contains("handshake error"), "{out}");
    drop(server);
}

#[test]
fn client_rejects_wrong_ca_and_wrong_host() {
    for (crt, key, expect) in [("other.crt", "other.key", "verify failed"), ("wrong-host.crt", "wrong-host.key", "hostname mismatch")] {
        let (crt, key) = (cert(crt), cert(key));
        let (server, port) = s_server(&["-cert", &crt, "-key", &key, "-naccept", "1"]);
        let (ok, out) = conntls_client(port, &opts(&client_opts()));
        assert!(!ok && out.contains("handshake error") && out.contains(expect), "{out}");
        drop(server);
    }
}

#[test]
fn client_resumes_with_s_server() {
    for flag in ["-tls1_3", "-tls1_2"] {
        let (crt, key) = (cert("server.crt"), cert("server.key"));
        let (server, port) = s_server(&["-cert", &crt, "-key", &key, "-naccept", "2", flag]);
        let mut o = opts(&client_opts());
        o.push("count=2".into());
        let (ok, out) = conntls_client(port, &o);
        assert!(ok && out.contains("reused=0") && out.contains("reused=1"), "{flag}: {out}");
        drop(server);
    }
}
