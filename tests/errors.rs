//! c_tests/errors.c: the per-thread last error and status names bindings rely on.
mod common;
use common::*;

c_test_in_every_build!("errors");
