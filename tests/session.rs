//! c_tests/session.c: handshakes, data, resumption, reloads, verification, garbage peers.
mod common;
use common::*;

#[test]
fn session_shared() {
    run_c("session", Link::Shared, &[]);
}

#[test]
fn session_static() {
    run_c("session", Link::Static, &[]);
}

#[test]
fn session_asan_ubsan() {
    run_c("session", Link::Sanitized, &[]);
}

#[test]
fn session_valgrind() {
    run_c_valgrind("session", &[]);
}
