//! The README's first command must keep working: run scripts/demo.sh (what `make demo`
//! runs after building) and check its report.
mod common;
use common::*;

use std::process::Command;

#[test]
fn demo_reports_without_errors() {
    lib_dir(); // the library must be built and current
    let out = Command::new(root().join("scripts/demo.sh")).output().expect("run scripts/demo.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in ["TLS rps", "certificate generations rotated", "handshake failures 0, connection errors 0; client errors/disconnects 0"] {
        assert!(report.contains(line), "{line:?} missing:\n{report}");
    }
    for test in ["SET", "GET"] {
        let row = report.lines().find(|l| l.trim_start().starts_with("32 B values, 50 clients") && l.contains(&format!(" {test} ")));
        assert!(row.is_some(), "no 32 B {test} row:\n{report}");
    }
    println!("{report}");
}
