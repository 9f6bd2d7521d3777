//! The libFuzzer harnesses of fuzz/: built (`make fuzz-build`), every committed
//! regression input replayed, then each fuzzer run for FUZZ_SECONDS (30 by default) from
//! the committed seed corpus. A finding fails the test, with the input's path.
mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn built() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("make").arg("-C").arg(root()).arg("fuzz-build").output().expect("run make fuzz-build");
        assert!(out.status.success(), "make fuzz-build (needs clang and libclang-rt-*-dev):\n{}", String::from_utf8_lossy(&out.stderr));
        root().join("target/fuzz/bin")
    })
    .clone()
}

fn fuzz(name: &str) {
    let bin = built().join(format!("fuzz_{name}"));
    let certs = root().join("target/fuzz/certs");
    let regressions: Vec<PathBuf> =
        std::fs::read_dir(root().join("fuzz/regressions").join(name)).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    if !regressions.is_empty() {
        let out = Command::new(&bin).env("CONNTLS_CERTS", &certs).args(&regressions).output().unwrap();
        assert!(out.status.success(), "fuzz_{name} fails a regression input:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let seconds = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "30".into());
    let work = scratch_dir();
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let out = Command::new(&bin)
        .env("CONNTLS_CERTS", &certs)
        .arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=20", "-rss_limit_mb=4096", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", work.display()))
        .arg(&corpus)
        .arg(root().join("fuzz/corpus").join(name))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = log.lines().filter(|l| l.contains("DONE") || l.starts_with("stat::number_of_executed_units")).collect();
    println!("fuzz_{name}, {seconds} s, {} regression inputs: {}", regressions.len(), summary.join("; "));
    if !out.status.success() {
        let kept = keep_findings(name, &work);
        panic!("fuzz_{name} found something:\n{}\n{kept}", log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    std::fs::remove_dir_all(&work).ok();
}

/// Moves what libFuzzer wrote (crash-*, timeout-*, ...) out of the scratch directory, which
/// a later test binary removes, into target/fuzz/findings (as `make fuzz` keeps them), and
/// shows each input in hex, so a CI log alone is enough to add it to fuzz/regressions.
fn keep_findings(name: &str, work: &std::path::Path) -> String {
    let findings = root().join("target/fuzz/findings");
    std::fs::create_dir_all(&findings).unwrap();
    let mut shown = String::new();
    for entry in std::fs::read_dir(work).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            continue;
        }
        let kept = findings.join(format!("{name}-{file}"));
        std::fs::rename(entry.path(), &kept).unwrap();
        let bytes = std::fs::read(&kept).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        shown += &format!("input kept in {} ({} bytes; `xxd -r -p` turns this back into it):\n{hex}\n", kept.display(), bytes.len());
    }
    shown
}

#[test]
fn fuzz_config() {
    fuzz("config");
}

#[test]
fn fuzz_peer() {
    fuzz("peer");
}

#[test]
fn fuzz_iov() {
    fuzz("iov");
}
