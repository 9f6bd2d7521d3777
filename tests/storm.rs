//! c_tests/swap_storm.c: server handshakes stepped on two threads in turn while the
//! context swaps certificates every millisecond (and refuses broken reloads).
mod common;
use common::*;

#[test]
fn swap_storm_2000_connections() {
    let out = run_c("swap_storm", Link::Shared, &["2000"]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn swap_storm_asan_ubsan() {
    run_c("swap_storm", Link::Sanitized, &["500"]);
}

/// ThreadSanitizer on the C side: the caller's hand-offs between threads, and everything
/// the library does to memory the caller can see, with no report.
#[test]
fn swap_storm_thread_sanitizer() {
    run_c("swap_storm", Link::ThreadSanitized, &["1000"]);
}
