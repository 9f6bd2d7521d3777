//! Closes that deliver what was sent: a server that closes right after its last reply
//! (`GET` then `QUIT`: CLIENT_CLOSE_AFTER_REPLY) must deliver every byte it was told was
//! written. conntls may hold the unsent tail of its last TLS record when the server frees
//! the client; stock's bytes are in the kernel by then. With a 4 KiB server send buffer
//! (the send-buffer shim) a record never fits the socket whole, so that tail is there on
//! every close: before issue 26 the conntls builds cut replies short (2 of 6 sizes on Redis
//! 7.0.15 by hand, the rest of the last record and the +OK missing). A client reading 4 KiB
//! a millisecond, sizes around the buffers' capacity and the record size, every byte
//! checked, on every conntls build (stock's, which deliver whole, in make soak). (How the
//! stream ends after the +OK is printed, not asserted: stock's own SSL_shutdown on a full
//! socket can leave a truncated alert.)
mod common;
use common::servers::*;

const SIZES: &str = "4000,4096,8192,16384,16390,32768,40000,65536,100000,262144,1000000,2600000";

/// The builds of `flavours` (stock's side: stock and module; conntls's: conntls and
/// conntls-module) of Redis 7.0.15, 8.0.2 and Valkey 8.1.1.
fn builds(flavours: [&'static str; 2]) -> Vec<Build> {
    let mut builds = Vec::new();
    for server in ["redis-7.0.15", "redis-8.0.2"] {
        builds.push(Build::new(server, flavours[0]));
    }
    for flavour in flavours {
        builds.push(Build::new("valkey-8.1.1", flavour));
    }
    builds
}

fn quit_after_large_replies(builds: Vec<Build>) {
    let _serial = one_at_a_time();
    for build in builds {
        let outcome = trigger(build, true, |_| ["quit", "4096", SIZES].map(String::from).to_vec());
        println!("{build}:\n{}", outcome.out.trim());
        outcome.assert_held(build, "quit 2600000: whole, +OK");
        let whole = outcome.out.lines().filter(|l| l.contains(": whole, +OK, then ")).count();
        assert_eq!(whole, SIZES.split(',').count(), "{build}:\n{}", outcome.out);
    }
}

/// The conntls builds, built in and as Valkey's module.
#[test]
fn quit_after_a_large_reply_delivers_it_whole() {
    quit_after_large_replies(builds(["conntls", "conntls-module"]));
}

/// `make soak`: the same on stock's builds, which deliver whole too (the comparison, not
/// a trigger: in CI only conntls's side runs).
#[test]
#[ignore = "soak: make soak"]
fn quit_after_a_large_reply_on_stock_soak() {
    quit_after_large_replies(builds(["stock", "module"]));
}
