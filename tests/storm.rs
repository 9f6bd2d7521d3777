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

/// ThreadSanitizer on the C side: the caller's hand-offs of connections between threads
/// and its own accesses, with no report (tests/tsan.supp says what TSan cannot see).
#[test]
fn swap_storm_thread_sanitizer() {
    run_c("swap_storm", Link::ThreadSanitized, &["1000"]);
}
