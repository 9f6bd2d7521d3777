//! The benchmarks keep building and working: each is compiled as the C tests are (warnings
//! are errors) and run briefly in its counting mode, with every writer on small, medium
//! and large pieces and every handshake kind. Their figures are BENCHMARKS.md's business,
//! not a test's.
mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

fn build_bench(name: &str) -> PathBuf {
    build_program(&root().join("benches").join(format!("{name}.c")), Link::Shared, &["-lssl"])
}

#[test]
fn writev_bench_every_writer() {
    let exe = build_bench("writev_bench");
    for writer in ["0", "1", "2", "3"] {
        // 64 B x 256, 100 B x 1000 (Valkey's per-iov fallback), 1 MiB x 1
        for mix in ["0", "1", "6"] {
            run_ok(Command::new(&exe).args(["count", writer, mix, "1"]));
        }
    }
}

#[test]
fn handshake_bench_every_kind() {
    let exe = build_bench("handshake_bench");
    for kind in ["0", "1"] {
        for resumed in ["0", "1"] {
            run_ok(Command::new(&exe).args(["count", kind, "0", resumed, "20"]));
        }
    }
}

#[test]
fn idle_memory_bench_runs() {
    let exe = build_bench("idle_memory");
    let out = run_ok(Command::new(&exe).arg(certs()).arg("3"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("KiB per idle pair"));
    let out = run_ok(Command::new(&exe).arg("--valkey").arg(certs()).arg("3"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("as Valkey") && text.contains("its server side alone"), "{text}");
}

#[test]
fn idle_clients_bench_runs() {
    let exe = build_bench("idle_clients");
    let server = Server::start(&[]);
    let c = |n: &str| certs().join(n).display().to_string();
    let pid = server.child.id().to_string();
    let plain = run_ok(Command::new(&exe).args(["--server-pid", &pid, "--port", &server.plain_port.to_string(), "--count", "5"]));
    assert!(String::from_utf8_lossy(&plain.stdout).contains("5 idle plain clients"));
    let tls = run_ok(Command::new(&exe).args([
        "--server-pid", &pid, "--port", &server.tls_port.to_string(), "--count", "5",
        "--ca", &c("ca.crt"), "--cert", &c("client.crt"), "--key", &c("client.key"),
    ]));
    assert!(String::from_utf8_lossy(&tls.stdout).contains("5 idle mutual-TLS clients"));
    server.stop();
}

#[test]
fn tls_storm_bench_runs() {
    let exe = build_bench("tls_storm");
    let server = Server::start(&[]);
    let c = |n: &str| certs().join(n).display().to_string();
    let out = run_ok(Command::new(&exe).args([
        "--port", &server.tls_port.to_string(), "--ca", &c("ca.crt"), "--cert", &c("client.crt"), "--key", &c("client.key"),
        "--storm", "40", "--give-up-ms", "500", "--patient", "2", "--seconds", "2",
        "--server-pid", &server.child.id().to_string(),
    ]));
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(line.contains("handshakes") && line.contains("patient GET") && line.contains("server CPU"), "{line}");
    server.stop();
}

#[test]
fn pool_data_path_bench_runs() {
    let exe = build_bench("pool_data_path");
    let out = run_ok(Command::new(&exe).args(["10", "100"]));
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(line.contains("100 round trips of 32 B with 10 connections inside a pool"), "{line}");
}

/// The LD_PRELOAD shims the server benchmarks load build without a warning.
#[test]
fn bench_shims_build() {
    for name in ["nodelay_shim", "keep_buffers_shim"] {
        let out = tmp_dir().join(format!("{name}-{}.so", std::process::id()));
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root().join("include"))
            .arg("-o")
            .arg(&out)
            .arg(root().join("benches").join(format!("{name}.c")))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "cc {name}.c failed");
    }
}
