//! memcached on conntls (contrib/memcached): 1.6.18 as Debian 12 ships it and 1.6.38 as
//! Debian 13 does, built stock and on conntls from Debian's sources by scripts/servers.sh
//! (AddressSanitizer), run on loopback with real TLS clients: memcached's own TLS tests
//! (Perl's IO::Socket::SSL) and tests/memcached_client.py (Python's ssl).
//!
//! In `make test` (conntls's side; stock's only where a test is about stock): memcached's
//! own basic TLS tests, decrypted bytes left in a record (the trigger, which stock fails),
//! a multi-MiB multiget to a slow reader, bad input, refresh_certs every second under
//! load, a handshake storm, and the options conntls serves differently. memcached's whole
//! suite, stock and conntls, runs by hand (contrib/memcached/README.md).
mod common;
use common::memcached::{self, client, count};
use common::servers::{free_port, Build, ServerProcess};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSIONS: [&str; 2] = ["memcached-1.6.18", "memcached-1.6.38"];

fn conntls(version: &'static str) -> Build {
    Build::new(version, "conntls")
}

/// memcached over TLS on a free loopback port with `cert`/`key` (and `extra` options).
fn start(build: Build, cert: &Path, key: &Path, extra: &[&str]) -> ServerProcess {
    memcached::start(&build.tree().join("memcached"), cert, key, extra)
}

/// memcached with the test certificates (scripts/make-certs.sh's server.crt, ECDSA).
fn start_default(build: Build, extra: &[&str]) -> ServerProcess {
    start(build, &certs().join("server.crt"), &certs().join("server.key"), extra)
}

/// The server is still running and wrote no sanitizer report; its output.
fn stop_clean(mut server: ServerProcess, what: &str) -> String {
    assert!(server.alive(), "{what}: the server died:\n{}", server.logs());
    let logs = server.stop();
    assert!(!logs.contains("ERROR: AddressSanitizer") && !logs.contains("runtime error"), "{what}: {logs}");
    logs
}

/// memcached's own tests in `build`'s tree, as `make test_basic_tls` runs them
/// (SSL_TEST=1): testapp, then each of FILES (t/...) by itself with `prove`. A failed unit
/// runs once more (upstream's timing-dependent tests, such as testapp's issue_101 under
/// load, must not fail CI); a second failure fails the test. LeakSanitizer reports fail a
/// t/ file (the memcached it starts), but for memcached's own leak at exit
/// (tests/memcached-lsan.supp names it); testapp runs without leak detection, its own
/// test code leaking by design (cache_redzone_test).
fn run_own_tests(build: Build, files: &[&str]) {
    let tree = build.tree();
    let unit = |program: &str, arg: Option<&str>, leaks: bool| {
        let mut cmd = Command::new(program);
        cmd.args(arg)
            .current_dir(&tree)
            .env("SSL_TEST", "1")
            .env("ASAN_OPTIONS", format!("detect_leaks={}", leaks as u8))
            .env("LSAN_OPTIONS", format!("suppressions={}", root().join("tests/memcached-lsan.supp").display()));
        cmd.output().unwrap_or_else(|e| panic!("run {program}: {e}"))
    };
    let units = std::iter::once(("./testapp", None, false)).chain(files.iter().map(|f| ("prove", Some(*f), true)));
    for (program, arg, leaks) in units {
        let name = arg.unwrap_or(program);
        if unit(program, arg, leaks).status.success() {
            continue;
        }
        eprintln!("{build}: {name} failed once, run again");
        let again = unit(program, arg, leaks);
        assert!(again.status.success(), "{build}: {name} failed twice:\n{}{}", String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    }
}

/// memcached's basic TLS tests (its own `test_basic_tls` list: testapp, getset.t and
/// every ssl_*.t; not its binary.t, whose binary protocol testapp covers too and which
/// takes longer than the rest together: it is in the whole suite, run by hand), on both
/// versions' conntls builds.
#[test]
fn memcached_own_basic_tls_tests_on_conntls() {
    for version in VERSIONS {
        let build = conntls(version);
        let mut files = vec!["t/getset.t".to_string()];
        let mut ssl: Vec<String> = std::fs::read_dir(build.tree().join("t"))
            .expect("t/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("ssl_") && n.ends_with(".t"))
            .map(|n| format!("t/{n}"))
            .collect();
        ssl.sort();
        assert!(ssl.len() >= 6, "{build}: only {ssl:?}");
        files.extend(ssl);
        run_own_tests(build, &files.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// A `get` whose bytes share a TLS record with the value of the `set` before it: the
/// set's read takes exactly the value, the get stays decrypted inside the connection,
/// and the fd never becomes readable for it. Stock (both versions) answers it only when
/// the client sends something more; conntls's adapter reads it before waiting (ssl_pending).
#[test]
fn a_request_left_in_a_tls_record_is_answered() {
    let stock = start_default(Build::new("memcached-1.6.38", "stock"), &[]);
    let out = client(&stock, "pending", &[]);
    assert_eq!(out, "stalled\nanswered after the next request\n", "stock 1.6.38: the trigger no longer bites");
    stop_clean(stock, "stock");
    for version in VERSIONS {
        let server = start_default(conntls(version), &[]);
        assert_eq!(client(&server, "pending", &[]), "answered\n", "{version}");
        stop_clean(server, version);
    }
}

/// Six 1.5 MB values in one multiget (9 MB) read by a client with a 32 KiB receive buffer,
/// 4 KiB at a time: every byte right, on both versions.
#[test]
fn a_multi_mib_multiget_to_a_slow_reader_arrives_whole() {
    for version in VERSIONS {
        let server = start_default(conntls(version), &["-I", "2m"]);
        let out = client(&server, "multiget", &["6", "1500000"]);
        assert_eq!(count(&out, "bytes"), 9_000_143.0, "{version}: {out}");
        stop_clean(server, version);
    }
}

/// An HTTP request in place of a ClientHello is closed and counted; a client that stops
/// halfway through its ClientHello holds only its own connection; an ordinary client is
/// served throughout.
#[test]
fn bad_input_costs_one_connection() {
    for version in VERSIONS {
        let server = start_default(conntls(version), &[]);
        let out = client(&server, "bad-input", &[]);
        assert_eq!(out, "garbage closed\nothers served\n", "{version}");
        stop_clean(server, version);
    }
}

/// refresh_certs every second, alternating two certificates of the same CA (the files
/// replaced by rename, as an operator's tooling does), while four clients connect, set,
/// get and close in a loop, every other connection resuming its last session: nothing
/// refused, sessions resume across reloads.
#[test]
fn refresh_certs_every_second_under_load() {
    let dir = scratch_dir();
    for (side, name) in [("a", "server"), ("b", "server2")] {
        for part in ["crt", "key"] {
            std::fs::copy(certs().join(format!("{name}.{part}")), dir.join(format!("server-{side}.{part}"))).unwrap();
            std::fs::copy(certs().join(format!("{name}.{part}")), dir.join(format!("server.{part}"))).unwrap();
        }
    }
    let server = start(conntls("memcached-1.6.38"), &dir.join("server.crt"), &dir.join("server.key"), &["-o", "ssl_session_cache"]);
    let out = client(&server, "refresh", &[&dir.display().to_string(), "6"]);
    println!("{out}");
    assert_eq!(count(&out, "failures"), 0.0, "{out}");
    assert!(count(&out, "refreshes") >= 3.0 && count(&out, "connections") > 0.0, "{out}");
    assert!(count(&out, "resumed") > 0.0, "no session resumed across the reloads: {out}");
    stop_clean(server, "refresh");
}

/// A handshake storm on RSA-4096 (the costliest server signature): 24 threads of clients
/// that send a ClientHello and leave, send garbage, or stall for a second, while two
/// established clients run set/get and a newcomer connects every 200 ms. On conntls the
/// newcomers keep being accepted and answered (the acceptor thread computes nothing); the
/// latencies, with stock's beside them, are BENCHMARKS.md's.
#[test]
fn new_clients_are_accepted_during_a_handshake_storm() {
    let server = start(conntls("memcached-1.6.38"), &certs().join("server-rsa4096.crt"), &certs().join("server-rsa4096.key"), &[]);
    let out = client(&server, "storm", &["24", "8"]);
    println!("{out}");
    assert_eq!(count(&out, "newcomer_failures"), 0.0, "{out}");
    assert!(count(&out, "newcomers") > 0.0 && count(&out, "abandoned") > 0.0, "{out}");
    assert!(count(&out, "established_ops") > 0.0, "{out}");
    stop_clean(server, "storm");
}

/// The options conntls serves otherwise than stock: kernel TLS and non-PEM keys are
/// refused at start with a message that says why; ssl_wbuf_size is accepted.
#[test]
fn options_conntls_refuses_say_why() {
    let binary: PathBuf = conntls("memcached-1.6.38").tree().join("memcached");
    let cert = certs().join("server.crt").display().to_string();
    let key = certs().join("server.key").display().to_string();
    for (option, expect) in [("ssl_kernel_tls", "Kernel TLS offload is not available"), ("ssl_keyformat=2", "reads PEM keys only")] {
        let out = Command::new(&binary)
            .args(["-u", "root", "-U", "0", "-p", &free_port().to_string(), "-l", "127.0.0.1", "-Z", "-o"])
            .arg(format!("ssl_chain_cert={cert},ssl_key={key},{option}"))
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .output()
            .expect("run memcached");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{option}: {stderr}"); // EX_USAGE
        assert!(stderr.contains(expect), "{option}: {stderr}");
    }
    let server = start_default(conntls("memcached-1.6.38"), &["-o", "ssl_wbuf_size=64"]);
    assert_eq!(client(&server, "pending", &[]), "answered\n");
    stop_clean(server, "ssl_wbuf_size");
}

/// benches/memcached.sh's clients keep building and working against memcached on conntls:
/// benches/mc_load.c for each request kind and its idle-memory mode, and benches/tls_storm.c
/// speaking memcached. Their figures are BENCHMARKS.md's business, not a test's.
#[test]
fn the_memcached_benchmark_clients_run() {
    let server = start_default(conntls("memcached-1.6.38"), &[]);
    let ca = certs().join("ca.crt").display().to_string();
    let (port, pid) = (server.port.to_string(), server.pid().to_string());
    let mc_load = build_program(&root().join("benches/mc_load.c"), Link::Shared, &[]);
    for (op, size) in [("get", "32"), ("set", "65536"), ("mget", "1024")] {
        let out = run_ok(Command::new(&mc_load).args(["--port", &port, "--ca", &ca, "--op", op, "--size", size, "--conns", "4", "--seconds", "1", "--server-pid", &pid]));
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(line.contains("requests/s") && line.contains("us/request"), "{line}");
    }
    let out = run_ok(Command::new(&mc_load).args(["--port", &port, "--ca", &ca, "--idle", "5", "--server-pid", &pid]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("KiB per connection"));
    let tls_storm = build_program(&root().join("benches/tls_storm.c"), Link::Shared, &[]);
    let out = run_ok(Command::new(&tls_storm).args([
        "--protocol", "memcached", "--port", &port, "--ca", &ca, "--storm", "20", "--give-up-ms", "500", "--patient", "2",
        "--seconds", "2", "--server-pid", &pid,
    ]));
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(line.contains("handshakes") && line.contains("patient GET") && !line.contains("patient GET 0/s"), "{line}");
    stop_clean(server, "benchmark clients");
}
