//! c_tests/groups.c: the groups option, the negotiated group, and the hybrid post-quantum
//! X25519MLKEM768 where the OpenSSL under test has it (3.5+).
mod common;
use common::*;

#[test]
fn groups_and_post_quantum_key_exchange() {
    let out = run_c("groups", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn groups_asan_ubsan() {
    run_c("groups", Link::Sanitized, &[]);
}
