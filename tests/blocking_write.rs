//! A blocking write whose committed bytes cannot be flushed fails with the flush's reason.
//! A replica's replication handshake writes its commands with connSyncWrite; under
//! c_tests/syncwrite_shim.c its first one commits a record the socket takes only half of,
//! and the flush of the rest fails with ECONNRESET. Before issue 26 the glue reported that
//! as a timeout with the connection still up, and the replica logged "Writing to master:
//! Success". The replica must log the reset, and replicate once the shim is spent.
mod common;
use common::servers::*;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_failed_flush_fails_the_blocking_write_with_its_reason() {
    let _serial = one_at_a_time();
    let build = Build::new("valkey-8.1.1", "conntls");
    let primary = build.start(false);
    let c = certs();
    let path = |name: &str| c.join(name).to_string_lossy().into_owned();
    let port = free_port();
    let mut args = tls_server_args(port);
    args.extend([
        "--replicaof".into(),
        format!("127.0.0.1 {}", primary.port),
        "--tls-replication".into(),
        "yes".into(),
        "--tls-client-cert-file".into(),
        path("client.crt"),
        "--tls-client-key-file".into(),
        path("client.key"),
    ]);
    let replica = ServerProcess::start_preloaded(&build.binary("server"), port, &args, Some(&syncwrite_shim()));
    // Bounded by a hang guard, not a timing: the replica retries its link once a second.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut info = String::new();
    while Instant::now() < deadline {
        let out = tls_tool(build, "cli", &replica).args(["INFO", "replication"]).output().expect("run valkey-cli");
        info = String::from_utf8_lossy(&out.stdout).into_owned();
        if info.contains("master_link_status:up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = replica.stop();
    drop(primary);
    let line = logs.lines().find(|l| l.contains("Writing to master")).unwrap_or_else(|| panic!("no failed write logged:\n{logs}"));
    println!("{line}");
    assert!(line.contains("reset by peer"), "the failed flush's reason is not in:\n{line}\n{logs}");
    assert!(info.contains("master_link_status:up"), "the replica did not replicate after the fault:\n{info}\n{logs}");
    assert!(!logs.contains("AddressSanitizer"), "{logs}");
}
