//! Redis as Debian ships it, 7.0.15 (Debian 12) and 8.0.2 (Debian 13), built from Debian's
//! source packages stock and with contrib/redis/tls.c (scripts/redis-servers.sh, with
//! AddressSanitizer), under the triggers of the defects conntls exists for. Each trigger
//! is also run on stock, and where stock fails it is asserted to fail, so that a pass on
//! conntls means something.
mod common;
use common::servers::*;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Stdio};

const VERSIONS: [&str; 2] = ["7.0.15", "8.0.2"];

fn binary(version: &str, flavour: &str, name: &str) -> PathBuf {
    redis_servers().join(format!("redis-{version}/{flavour}/src/{name}"))
}

fn tree(version: &str, flavour: &str) -> PathBuf {
    redis_servers().join(format!("redis-{version}/{flavour}"))
}

fn start(version: &str, flavour: &str, shim: bool) -> ServerProcess {
    let port = free_port();
    ServerProcess::start(&binary(version, flavour, "redis-server"), port, &tls_server_args(port), shim)
}

#[test]
fn bad_length_trigger_drops_stock_connections_and_none_on_conntls() {
    let _serial = one_at_a_time();
    for version in VERSIONS {
        let server = start(version, "stock", true);
        let (code, out) = run_peer(server.port, &BAD_LENGTH_TRIGGER);
        let logs = server.stop();
        assert_eq!(code, 1, "redis {version} stock: the trigger no longer drops connections:\n{out}\n{logs}");
        assert!(logs.contains("SSL routines::bad length"), "redis {version} stock dropped for another reason:\n{out}\n{logs}");
        println!("redis {version} stock: {}", out.lines().filter(|l| l.contains("dropped")).count());

        let mut server = start(version, "conntls", true);
        let (code, out) = run_peer(server.port, &BAD_LENGTH_TRIGGER);
        assert!(server.alive(), "redis {version} on conntls died:\n{}", server.logs());
        let logs = server.stop();
        assert_eq!(code, 0, "redis {version} on conntls dropped a connection:\n{out}\n{logs}");
        assert_eq!(out.lines().filter(|l| l.ends_with("ok, 40 replies")).count(), 4, "{out}");
        assert!(!logs.contains("bad length") && !logs.contains("AddressSanitizer"), "{logs}");
    }
}

/// A 30 KB and a 16 MiB value, two GETs of each, read 16 KiB a millisecond through a 4 KiB
/// send buffer: the writev path with replies far past its 64 KiB gather limit.
#[test]
fn sixteen_mib_replies_to_a_slow_reader() {
    let _serial = one_at_a_time();
    let trigger = ["pipeline", "1", "4", "2", "16384", "30000,16777216"];
    for version in VERSIONS {
        // Redis gathers into its stack buffer only below NET_MAX_WRITES_PER_EVENT (64 KiB),
        // so stock is not expected to crash here as Valkey 8.1 does (valkey #4307): its
        // outcome is recorded, not asserted.
        let mut server = start(version, "stock", true);
        let (code, out) = run_peer(server.port, &trigger);
        println!("redis {version} stock, 16 MiB replies: peer exit {code}, server alive: {}\n{out}", server.alive());
        drop(server);

        let mut server = start(version, "conntls", true);
        let (code, out) = run_peer(server.port, &trigger);
        assert!(server.alive(), "redis {version} on conntls died:\n{}", server.logs());
        let logs = server.stop();
        assert_eq!(code, 0, "redis {version} on conntls: {out}\n{logs}");
        assert!(out.contains("ok, 4 replies"), "{out}");
    }
}

/// Two clients kill each other with CLIENT KILL waiting decrypted behind a 40,000-byte bulk
/// that the server reads exactly to its end; both are written while the server is stopped
/// (SIGSTOP/SIGCONT by resp_tls_peer), so both reach the end of the bulk in one event-loop
/// turn and sit on the TLS pending list together, however fast the machine. Stock 8.0.2
/// walks that list with an iterator that caches the next node, which the first kill frees
/// (the defect of Redis 6.2.24's fix and Valkey's CVE-2026-56684); stock 7.0.15 carries
/// Debian's CVE-2026-81934 patch, which pops from the head. contrib/common/conntls_glue.h
/// pops from the head: with an iterator walk instead, this test fails on both conntls
/// builds (checked once).
#[test]
fn pending_list_kill_trigger() {
    let _serial = one_at_a_time();
    let rounds = |server: &ServerProcess| ["killpair".to_string(), "20".to_string(), server.pid().to_string()];

    let mut server = start("8.0.2", "stock", false);
    let (code, out) = run_peer(server.port, &rounds(&server));
    assert_eq!(code, 1, "redis 8.0.2 stock survived the pending-list trigger:\n{out}");
    assert!(server.ended(), "redis 8.0.2 stock stopped answering but did not end:\n{out}");
    let logs = server.stop();
    assert!(logs.contains("heap-use-after-free") && logs.contains("tlsProcessPendingData"), "{logs}");

    let server = start("7.0.15", "stock", false);
    let (code, out) = run_peer(server.port, &rounds(&server));
    let logs = server.stop();
    assert_eq!(code, 0, "redis 7.0.15 stock: {out}\n{logs}");

    for version in VERSIONS {
        let mut server = start(version, "conntls", false);
        let (code, out) = run_peer(server.port, &rounds(&server));
        assert!(server.alive(), "redis {version} on conntls died:\n{}", server.logs());
        let logs = server.stop();
        assert_eq!(code, 0, "redis {version} on conntls: {out}\n{logs}");
        assert!(!logs.contains("AddressSanitizer"), "{logs}");
    }
}

/// The tree's own redis-cli and redis-benchmark (their TLS is hiredis's, on OpenSSL)
/// against each conntls build: a 1 MiB value back byte for byte, a benchmark without errors.
#[test]
fn redis_cli_and_benchmark_against_conntls() {
    let _serial = one_at_a_time();
    let c = certs();
    let value: String = (0..1 << 20).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    for version in VERSIONS {
        let server = start(version, "conntls", false);
        let tls = |cmd: &mut Command| {
            cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "--tls"])
                .arg("--cacert")
                .arg(c.join("ca.crt"))
                .arg("--cert")
                .arg(c.join("client.crt"))
                .arg("--key")
                .arg(c.join("client.key"))
                .env("ASAN_OPTIONS", "detect_leaks=0");
        };
        let mut set = Command::new(binary(version, "conntls", "redis-cli"));
        tls(&mut set);
        let out = set.args(["-x", "set", "big"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(value.as_bytes())?;
            child.wait_with_output()
        });
        let out = out.expect("run redis-cli");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");

        let mut get = Command::new(binary(version, "conntls", "redis-cli"));
        tls(&mut get);
        let out = get.args(["--raw", "get", "big"]).output().expect("run redis-cli");
        assert!(out.stdout == format!("{value}\n").into_bytes(), "redis {version}: GET did not return the 1 MiB value");

        let mut bench = Command::new(binary(version, "conntls", "redis-benchmark"));
        tls(&mut bench);
        let out = bench.args(["-n", "20000", "-c", "20", "-t", "set,get,lrange_100", "-q"]).output().expect("run redis-benchmark");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("rror"), "redis {version}: {text}");
        assert_eq!(text.matches("requests per second").count(), 4, "{text}"); // LRANGE adds its LPUSH
        let logs = server.stop();
        assert!(!logs.contains("AddressSanitizer"), "{logs}");
    }
}

/// Redis's own tests with --tls, on the network path: unit/tls, pipelining
/// (unit/protocol), unit/networking, a replica over TLS under blocking commands
/// (integration/block-repl) and replication with commands running meanwhile
/// (integration/replication-4). Each file must pass on conntls, and on stock too (so a
/// failure here is conntls's, not the tree's).
#[test]
fn redis_own_tls_tests_pass_as_on_stock() {
    let _serial = one_at_a_time();
    let files = ["unit/tls", "unit/protocol", "unit/networking", "integration/block-repl", "integration/replication-4"];
    for version in VERSIONS {
        for flavour in ["stock", "conntls"] {
            let dir = tree(version, flavour);
            if !dir.join("tests/tls/ca.crt").exists() {
                let out = Command::new("./utils/gen-test-certs.sh").current_dir(&dir).output().expect("gen-test-certs.sh");
                assert!(out.status.success(), "gen-test-certs.sh: {}", String::from_utf8_lossy(&out.stderr));
            }
            let mut passed = 0;
            for file in files {
                let out = Command::new("./runtest")
                    .args(["--tls", "--clients", "2", "--timeout", "600", "--single", file])
                    .current_dir(&dir)
                    .env("ASAN_OPTIONS", "detect_leaks=0")
                    .output()
                    .expect("run runtest");
                let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
                let ok = text.lines().filter(|l| l.starts_with("[ok]:")).count();
                assert!(
                    out.status.success() && text.contains("All tests passed without errors!") && ok > 0,
                    "redis {version} {flavour}: ./runtest --tls --single {file} failed:\n{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                passed += ok;
            }
            println!("redis {version} {flavour}: {passed} passed, 0 failed in {}", files.join(" "));
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
