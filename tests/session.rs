//! c_tests/session.c: handshakes, data, resumption, reloads, verification, garbage peers.
mod common;
use common::*;

c_test_in_every_build!("session");
