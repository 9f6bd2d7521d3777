//! c_tests/fork.c: a child forked while threads log, run the handshake pool, keep client
//! sessions and reload a context can use and free everything it inherited.
//!
//! Not under AddressSanitizer: GCC 12's ASan allocator takes a lock of its own that a
//! fork can copy held (a child stuck in `SizeClassAllocator64::GetFromAllocator` under
//! `malloc`, about one fork in 40 here); glibc's malloc, which the servers and this run
//! use, is fork-safe.
mod common;
use common::*;

#[test]
fn fork_under_load() {
    let out = run_c("fork", Link::Shared, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
}
