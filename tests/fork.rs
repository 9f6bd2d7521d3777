//! c_tests/fork.c: a child forked while threads log, run the handshake pool, keep client
//! sessions and reload a context can use and free everything it inherited.
mod common;
use common::*;

#[test]
fn fork_under_load() {
    let out = run_c("fork", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn fork_under_load_asan_ubsan() {
    run_c("fork", Link::Sanitized, &["20"]);
}
