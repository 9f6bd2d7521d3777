//! examples/resp_server.c loaded by real clients: redis-benchmark --tls and redis-cli
//! (Debian's redis-tools) while certificates rotate every second, openssl s_client resuming
//! across a rotation, and malformed RESP.
mod common;
use common::*;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn stat(stats: &str, key: &str) -> u64 {
    stats.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{key} not in {stats}"))
}

fn tls_args() -> Vec<String> {
    let c = |n: &str| certs().join(n).display().to_string();
    vec!["--tls".into(), "--cacert".into(), c("ca.crt"), "--cert".into(), c("client.crt"), "--key".into(), c("client.key")]
}

fn redis_benchmark(port: u16, size: &str, tests: &str, requests: &str) -> String {
    let out = Command::new("timeout")
        .args(["120", "redis-benchmark", "-p", &port.to_string()])
        .args(tls_args())
        .args(["-q", "-c", "50", "-n", requests, "-d", size, "-t", tests])
        .output()
        .expect("redis-benchmark (Debian's redis-tools; .ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n") + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

fn redis_cli(port: u16, tls: bool, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-p", &port.to_string()]);
    if tls {
        cmd.args(tls_args());
    }
    let out = cmd.args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subject of the certificate the server presents now (openssl s_client).
fn served_subject(port: u16) -> String {
    let out = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-connect", &format!("127.0.0.1:{port}"), "-CAfile"])
        .arg(certs().join("ca.crt"))
        .arg("-cert")
        .arg(certs().join("client.crt"))
        .arg("-key")
        .arg(certs().join("client.key"))
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("subject=")).unwrap_or_default().trim().to_string()
}

/// Rotates the live certificate to `name`, asks for a reload (SIGHUP), and waits (at most
/// 100 connections) until new connections get it: a rotation counts once it is served.
fn rotate_and_wait(server: &Server, name: &str) {
    Server::rotate_to(&server.live, name);
    server.signal(1);
    let want = format!("CN = {name}");
    for _ in 0..100 {
        if served_subject(server.tls_port) == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server never served {want}");
}

/// Rotations are driven by count, not by the clock: four rotations, each waited for, while
/// the benchmarks run; the load goes on (a bounded number of short extra runs) until the
/// four are done, however fast the machine is.
#[test]
fn redis_benchmark_while_certificates_rotate() {
    let server = Arc::new(Server::start(&[]));
    const ROTATIONS: u64 = 4;
    let rotated = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (server, rotated) = (server.clone(), rotated.clone());
        std::thread::spawn(move || {
            for i in 1..=ROTATIONS {
                rotate_and_wait(&server, if i % 2 == 1 { "server2" } else { "server" });
            }
            rotated.store(true, Ordering::Relaxed);
        })
    };
    let mut outputs = String::new();
    for (size, tests, n) in [("32", "set,get", "50000"), ("32768", "set,get", "10000"), ("32768", "lrange_100", "500")] {
        outputs += &redis_benchmark(server.tls_port, size, tests, n);
    }
    let mut extra_runs = 0;
    while !rotated.load(Ordering::Relaxed) && extra_runs < 200 {
        outputs += &redis_benchmark(server.tls_port, "32", "get", "2000");
        extra_runs += 1;
    }
    // What redis-benchmark wrote can be read back, byte for byte.
    let value: String = (0..32768).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    assert_eq!(redis_cli(server.tls_port, true, &["SET", "readback", &value]).trim(), "OK");
    assert_eq!(redis_cli(server.tls_port, true, &["GET", "readback"]).trim_end_matches('\n'), value);
    assert_eq!(redis_cli(server.plain_port, false, &["GET", "readback"]).trim_end_matches('\n'), value);
    assert_eq!(redis_cli(server.tls_port, true, &["LPUSH", "l", "a", "b"]).trim(), "2");
    assert_eq!(redis_cli(server.tls_port, true, &["LRANGE", "l", "0", "-1"]).trim(), "b\na");
    assert!(redis_cli(server.tls_port, true, &["NOSUCH"]).contains("ERR unknown command"));
    rotator.join().expect("every rotation was served");
    let stats = Arc::into_inner(server).expect("the rotator is done").stop();
    println!("{outputs}\n{stats}");
    // Three runs: 32 B SET/GET, 32 KiB SET/GET, LRANGE_100 of 32 KiB values; then GETs.
    let finished = outputs.lines().filter(|l| l.contains("requests per second")).count();
    assert_eq!(finished, 6 + extra_runs, "{outputs}");
    assert!(!outputs.to_lowercase().contains("error") && !outputs.contains("reset"), "{outputs}");
    assert_eq!(stat(&stats, "conn_errors"), 0, "{stats}");
    assert_eq!(stat(&stats, "handshake_errors"), 0, "{stats}");
    assert_eq!(stat(&stats, "generation"), 1 + ROTATIONS, "every rotation is one generation: {stats}");
}

#[test]
fn s_client_resumes_across_a_rotation() {
    let server = Server::start(&[]);
    let sess = scratch_dir().join("sess.pem");
    let s_client = |extra: &[&str]| {
        let mut child = Command::new("timeout")
            .args(["30", "openssl", "s_client", "-connect", &format!("127.0.0.1:{}", server.tls_port), "-CAfile"])
            .arg(certs().join("ca.crt"))
            .args(["-cert"])
            .arg(certs().join("client.crt"))
            .args(["-key"])
            .arg(certs().join("client.key"))
            .args(["-verify_return_error", "-ign_eof"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"PING\r\nQUIT\r\n").unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = s_client(&["-sess_out", sess.to_str().unwrap()]);
    assert!(first.contains("+PONG") && first.contains("New, TLSv1.3"), "{first}");
    rotate_and_wait(&server, "server2");
    let second = s_client(&["-sess_in", sess.to_str().unwrap()]);
    assert!(second.contains("+PONG") && second.contains("Reused, TLSv1.3"), "{second}");
    let fresh = s_client(&[]);
    assert!(fresh.contains("CN = server2"), "the rotated certificate is served: {fresh}");
    let stats = server.stop();
    assert_eq!(stat(&stats, "generation"), 2, "{stats}");
}

#[test]
fn malformed_resp_gets_an_error_and_a_close() {
    let server = Server::start(&[]);
    for bad in [&b"*abc\r\n"[..], b"*2\r\n$3\r\nGET\r\nxx\r\n", b"*1\r\n$99999999999\r\n", b"*5000\r\n"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.plain_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bad).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("the server closes the connection");
        assert!(reply.starts_with("-ERR Protocol error"), "{:?} -> {reply:?}", String::from_utf8_lossy(bad));
    }
    // The server is still fine.
    assert_eq!(redis_cli(server.plain_port, false, &["PING"]).trim(), "PONG");
    let stats = server.stop();
    assert_eq!(stat(&stats, "protocol_errors"), 4, "{stats}");
}
