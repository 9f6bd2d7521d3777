//! c_tests/log_swap.c: once conn_tls_set_log returns, the old callback is not running and
//! never runs again, with threads and the handshake pool logging throughout.
mod common;
use common::*;

#[test]
fn swap_under_threads() {
    let out = run_c("log_swap", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn swap_under_threads_asan_ubsan() {
    run_c("log_swap", Link::Sanitized, &[]);
}

#[test]
fn swap_under_threads_thread_sanitizer() {
    run_c("log_swap", Link::ThreadSanitized, &[]);
}
