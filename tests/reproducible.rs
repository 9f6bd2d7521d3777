//! Reproducible builds: the same commit built in two different directories gives
//! byte-identical libraries, and neither carries a path of the checkout or of the cargo
//! registry (the Makefile's --remap-path-prefix).
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the source tree (what git tracks, and new files not ignored) at `dir`.
fn copy_sources(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("bash")
        .arg("-c")
        .arg("git ls-files -z -co --exclude-standard | tar --null -cf - -T - | tar -xf - -C \"$0\"")
        .arg(dir)
        .current_dir(root())
        .status()
        .expect("copy the sources");
    assert!(status.success());
}

fn build(dir: &Path) -> PathBuf {
    let out = Command::new("make").arg("-C").arg(dir).arg("build").env_remove("RUSTFLAGS").output().expect("run make");
    assert!(out.status.success(), "make in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    dir.join("target/release")
}

fn sha256(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

#[test]
fn two_checkouts_build_identical_libraries() {
    let scratch = scratch_dir();
    // Different names and depths, so no path can coincide by accident.
    let (a, b) = (scratch.join("a"), scratch.join("second/checkout-b"));
    copy_sources(&a);
    copy_sources(&b);
    let (out_a, out_b) = (build(&a), build(&b));
    let version = env!("CARGO_PKG_VERSION");
    for lib in [format!("libconntls.so.{version}"), "libconntls.a".to_string()] {
        assert_eq!(sha256(&out_a.join(&lib)), sha256(&out_b.join(&lib)), "{lib} differs between {} and {}", a.display(), b.display());
    }
    let home = std::env::var("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let text = String::from_utf8_lossy(&std::fs::read(out_a.join(format!("libconntls.so.{version}"))).unwrap()).into_owned();
    for path in [a.display().to_string(), home.display().to_string()] {
        assert!(!text.contains(&path), "the library contains the build path {path}");
    }
    std::fs::remove_dir_all(&scratch).ok();
}
