//! c_tests/buffers.c: release-buffers yes (the default) leaves idle connections without
//! OpenSSL record buffers; no keeps them.
mod common;
use common::*;

#[test]
fn idle_connections_give_their_buffers_back() {
    let out = run_c("buffers", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}
