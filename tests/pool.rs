//! c_tests/pool.c: the handshake pool under a bound, with timeouts and busy refusals.
mod common;
use common::*;

#[test]
fn pool_shared() {
    let out = run_c("pool", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn pool_asan_ubsan() {
    run_c("pool", Link::Sanitized, &[]);
}

#[test]
fn pool_thread_sanitizer() {
    run_c("pool", Link::ThreadSanitized, &[]);
}

#[test]
fn pool_valgrind() {
    // valgrind runs everything about 50x slower: fewer connections, a longer deadline.
    run_c_valgrind("pool", &["100", "60000"]);
}
