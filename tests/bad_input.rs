//! c_tests/bad_input.c: every config and file error, NULL handles, bad fds and iovecs.
mod common;
use common::*;

c_test_in_every_build!("bad_input");
