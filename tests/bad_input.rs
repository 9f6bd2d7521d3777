//! c_tests/bad_input.c: every config and file error, NULL handles, bad fds and iovecs.
mod common;
use common::*;

#[test]
fn bad_input_shared() {
    run_c("bad_input", Link::Shared, &[]);
}

#[test]
fn bad_input_static() {
    run_c("bad_input", Link::Static, &[]);
}

#[test]
fn bad_input_asan_ubsan() {
    run_c("bad_input", Link::Sanitized, &[]);
}

#[test]
fn bad_input_valgrind() {
    run_c_valgrind("bad_input", &[]);
}
