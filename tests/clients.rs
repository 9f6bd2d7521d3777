//! The conntls transports for the C client libraries people link, built against the real
//! libraries fetched by name (scripts/clients.sh): hiredis 1.2.0 from Debian 13's source
//! package and libvalkey 0.5.0 from PyPI's sdist. One client program
//! (c_tests/client_transport.c, built once per library) against Debian's redis-server
//! --tls and the project's resp_server, mutual TLS throughout.
mod common;
use common::client_programs::client_program;
use common::servers::*;
use common::*;

use std::path::PathBuf;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

const LIBRARIES: [&str; 2] = ["hiredis", "libvalkey"];

/// client_transport built against `library` with its OpenSSL TLS and the conntls transport.
fn program(library: &str) -> PathBuf {
    client_program("client_transport", library)
}

/// Runs one mode of the client program against `port`; its output, asserting exit 0.
fn client(library: &str, port: u16, mode: &[&str], valgrind: bool) -> String {
    let c = certs();
    let mut cmd = if valgrind {
        let mut v = Command::new("valgrind");
        v.args(["--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99"])
            .arg(program(library));
        v
    } else {
        Command::new(program(library))
    };
    let out = cmd
        .arg(mode[0])
        .arg(port.to_string())
        .args([c.join("ca.crt"), c.join("client.crt"), c.join("client.key")])
        .args(&mode[1..])
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run client_transport");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{library} {mode:?}: exit {:?}\n{text}", out.status.code());
    text
}

fn redis_server() -> ServerProcess {
    let port = free_port();
    ServerProcess::start(std::path::Path::new("/usr/bin/redis-server"), port, &tls_server_args(port), false)
}

fn other_ca() -> String {
    certs().join("other-ca.crt").to_string_lossy().into_owned()
}

/// SET and GET of 3 MiB values over the library's own OpenSSL TLS (blocking) and over the
/// conntls transport, blocking and async (hiredis: its poll and libevent adapters;
/// libvalkey: an adapter on poll(2) in the test, its sdist having none), against Debian's
/// redis-server and against resp_server.
#[test]
fn round_trips_of_3_mib() {
    let size = (3 << 20).to_string();
    let server = redis_server();
    for library in LIBRARIES {
        for transport in ["conntls", "openssl"] {
            let out = client(library, server.port, &["roundtrip", transport, &size], false);
            assert!(out.contains("sync: 3145728 bytes back byte for byte"), "{out}");
            let loops: &[&str] = match (library, transport) {
                (_, "openssl") => &[],
                ("hiredis", _) => &["poll", "libevent"],
                _ => &["poll (the test's own adapter)"],
            };
            for event_loop in loops {
                assert!(out.contains(&format!("async, {event_loop}: 3145728 bytes back byte for byte")), "{out}");
            }
        }
    }
    drop(server);
    let resp = Server::start(&[]);
    for library in LIBRARIES {
        client(library, resp.tls_port, &["roundtrip", "conntls", &size], false);
    }
    resp.stop();
}

/// A server signed by another CA is refused with a message that says verification failed.
#[test]
fn a_wrong_ca_is_refused_with_its_reason() {
    let server = redis_server();
    for library in LIBRARIES {
        let out = client(library, server.port, &["wrongca", &other_ca()], false);
        assert!(out.contains("wrong CA: peer certificate verify failed"), "{out}");
    }
}

/// The conn_tls_ctx reloaded between connections: the next connection uses the new CA
/// (refused), the open one keeps answering, a reload back connects again.
#[test]
fn a_client_context_reload_applies_to_the_next_connection() {
    let server = redis_server();
    for library in LIBRARIES {
        let out = client(library, server.port, &["reload", &other_ca()], false);
        assert!(out.contains("reload: first kept answering, second refused, third connected"), "{out}");
    }
}

/// 10 MiB of SETs pipelined through the client's 4 KiB send buffer, then their GETs.
#[test]
fn a_10_mib_pipeline_through_a_4_kib_send_buffer() {
    let server = redis_server();
    for library in LIBRARIES {
        let out = client(library, server.port, &["pipeline", "10"], false);
        assert!(out.contains("320 replies right"), "{out}");
    }
}

/// NULL context, NULL conn_tls_ctx, a context already on TLS: an error and a message
/// each; a context whose connect failed keeps the connect's error.
#[test]
fn bad_input_gets_an_error_and_a_message() {
    let server = redis_server();
    for library in LIBRARIES {
        let out = client(library, server.port, &["badinput"], false);
        assert!(out.contains("NULL conn_tls_ctx: the conn_tls_ctx is NULL"), "{out}");
        assert!(out.contains("was already associated"), "{out}");
        // The program checks that the text did not change (libvalkey 0.5.0 leaves it empty).
        assert!(out.contains("failed connect: "), "{out}");
        assert!(!out.contains("negative"), "{out}");
    }
}

/// Debian's redis-server in cluster mode (tls-cluster yes, so CLUSTER SLOTS gives its TLS
/// port), all slots on it, the cluster up.
fn cluster_node() -> ServerProcess {
    let port = free_port();
    let mut args = tls_server_args(port);
    args.extend(["--cluster-enabled", "yes", "--tls-cluster", "yes"].map(String::from));
    let server = ServerProcess::start(std::path::Path::new("/usr/bin/redis-server"), port, &args, false);
    let tls_cli = |cmd: &[&str]| {
        let out = tls_command(std::path::Path::new("redis-cli"), port).args(cmd).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    };
    assert_eq!(tls_cli(&["cluster", "addslotsrange", "0", "16383"]).trim(), "OK");
    let up = (0..600).any(|_| {
        tls_cli(&["cluster", "info"]).contains("cluster_state:ok") || (std::thread::sleep(std::time::Duration::from_millis(100)), false).1
    });
    assert!(up, "the cluster never came up:\n{}", server.logs());
    server
}

/// libvalkey's cluster context over the transport: a 3 MiB value SET and read back through
/// valkeyClusterCommand (the context connects to the node it learns from CLUSTER SLOTS
/// through the TLS hook).
#[test]
fn libvalkey_cluster_context_over_conntls() {
    let server = cluster_node();
    let out = client("libvalkey", server.port, &["cluster", "3145728"], false);
    assert!(out.contains("cluster: 3145728 bytes back byte for byte"), "{out}");
}

/// A cluster context whose node stopped: libvalkey reconnects and calls the TLS hook on
/// the failed connection (fd -1). The transport's complaint about that fd ("fd -1 is
/// negative") once replaced the connect's own error; now every command's error is
/// libvalkey's (what libvalkey then does with the connect's error is its own).
#[test]
fn libvalkey_cluster_context_keeps_the_connect_error() {
    let server = cluster_node();
    let c = certs();
    let mut child = Command::new(program("libvalkey"))
        .arg("cluster-stopped")
        .arg(server.port.to_string())
        .args([c.join("ca.crt"), c.join("client.crt"), c.join("client.key")])
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run client_transport");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected", "{line}");
    server.stop();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    println!("{rest}");
    assert!(rest.contains("command 2 after the stop"), "{rest}");
    assert!(!rest.contains("negative"), "{rest}");
}

/// The round trips and the bad input under valgrind: no error, no leak.
#[test]
fn valgrind_clean() {
    let server = redis_server();
    for library in LIBRARIES {
        client(library, server.port, &["roundtrip", "conntls", "1048576"], true);
        client(library, server.port, &["badinput"], true);
    }
}

/// The Lettuce outage, on hiredis and libvalkey: a client waiting on a server that
/// vanished. Debian's redis-server in one network namespace, the client program in
/// another; once both clients are connected the server's link goes down. Over conntls
/// (tcp-user-timeout 3000 ms) the PING fails after the user timeout; over the library's own
/// OpenSSL TLS the same program is still waiting 10 s later (it would for ~15 minutes of
/// retransmits). Needs root: `make test` skips it, saying so, where namespaces cannot be
/// made.
#[test]
fn black_hole_fails_fast_on_conntls_and_waits_on_the_stock_tls() {
    use common::netns::{ip, Ended, Namespaces};
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let ns = Namespaces::create().expect("create network namespaces");
    let (sdev, _) = ns.devices();
    let (plain, tls) = (6379u16, 6380u16);
    let c = certs();
    // tls_server_args, then what the namespace needs (later options win).
    let mut args = tls_server_args(tls);
    args.extend(["--bind", Namespaces::SERVER_ADDR, "--protected-mode", "no", "--port", &plain.to_string()].map(String::from));
    args.extend(["--logfile", "/dev/null"].map(String::from));
    let _server = Ended(
        Command::new("ip")
            .args(["netns", "exec", &ns.server, "/usr/bin/redis-server"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server in the namespace"),
    );
    let ready = (0..200).any(|_| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.client, "redis-cli", "-h", Namespaces::SERVER_ADDR, "-p", &plain.to_string(), "ping"])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")).unwrap_or(false)
            || (std::thread::sleep(Duration::from_millis(50)), false).1
    });
    assert!(ready, "redis-server did not come up in the namespace");

    let mut clients = Vec::new();
    for library in LIBRARIES {
        for transport in ["conntls", "openssl"] {
            let mut child = Command::new("ip")
                .args(["netns", "exec", &ns.client])
                .arg(program(library))
                .args(["blackhole", &tls.to_string()])
                .args([c.join("ca.crt"), c.join("client.crt"), c.join("client.key")])
                .args([transport, Namespaces::SERVER_ADDR, "3000"])
                .env_remove("LD_LIBRARY_PATH")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start client_transport");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            assert_eq!(first, "connected", "{library} over {transport} did not connect");
            clients.push((library, transport, Ended(child), lines));
        }
    }
    ip(&["-n", &ns.server, "link", "set", &sdev, "down"]).expect("make the black hole");
    let hole = Instant::now();
    for (_, _, Ended(child), _) in clients.iter_mut() {
        writeln!(child.stdin.as_mut().expect("stdin"), "go").expect("tell the client");
    }
    for (library, transport, Ended(child), lines) in clients.iter_mut() {
        if *transport != "conntls" {
            continue;
        }
        let status = child.wait().expect("wait for the conntls client");
        let said = lines.next().and_then(Result::ok).unwrap_or_default();
        println!("{library} over conntls: {said}");
        assert_eq!(status.code(), Some(0), "{library} over conntls: {said}");
        assert!(said.starts_with("ping after") && said.contains("peer timed out"), "{said}");
    }
    let ten = Duration::from_secs(10);
    if let Some(rest) = ten.checked_sub(hole.elapsed()) {
        std::thread::sleep(rest);
    }
    for (library, transport, Ended(child), _) in clients.iter_mut() {
        if *transport == "conntls" {
            continue;
        }
        let waiting = matches!(child.try_wait(), Ok(None));
        println!("{library} over its own OpenSSL TLS: still waiting 10 s after the black hole: {waiting}");
        assert!(waiting, "{library} over its own TLS gave up within 10 s: the comparison shows nothing");
    }
    drop(clients);
    drop(_server);
    drop(ns);
}
