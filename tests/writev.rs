//! c_tests/writev_stress.c: OpenSSL's write-retry rule under an adversarial caller, the
//! same caller on plain OpenSSL failing (so the test is known to catch it), and 50
//! connections of 32 KiB values.
mod common;
use common::*;

use std::process::Command;

fn stress(mode: &str, link: Link) -> String {
    let exe = build_c("writev_stress", link, &["-lssl"]);
    let out = run_ok(Command::new(exe).arg(mode));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    text
}

#[test]
fn adversarial_retries_never_fail_or_corrupt() {
    let out = stress("adversarial", Link::Shared);
    assert!(out.contains("ERR 0"), "{out}");
}

#[test]
fn adversarial_retries_asan_ubsan() {
    stress("adversarial", Link::Sanitized);
}

#[test]
fn naive_openssl_caller_hits_bad_length() {
    let out = stress("naive", Link::Shared);
    assert!(out.contains("bad length"), "{out}");
}

#[test]
fn fifty_connections_of_32k_values() {
    stress("fifty", Link::Static);
}
