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
