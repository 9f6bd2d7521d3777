//! c_tests/liveness.c: socket options on loopback, and dead peers in a black hole made of
//! two network namespaces this test creates and always removes.
mod common;
use common::netns::Namespaces;
use common::*;

use std::process::Command;

#[test]
fn options_and_defaults_reach_the_socket() {
    run_c("liveness", Link::Shared, &["options"]);
}

/// Needs root and network namespaces; `make test` runs it only where scripts/can-netns.sh
/// says they can be made, and prints why it was skipped otherwise.
#[test]
fn black_hole_detected_by_user_timeout_and_keepalive() {
    let ns = Namespaces::create().expect("create network namespaces");
    let (sdev, _) = ns.devices();
    let out = run_c("liveness", Link::Shared, &["blackhole", &ns.server, &ns.client, &sdev, Namespaces::SERVER_ADDR]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    drop(ns);
    assert!(Command::new("ip").args(["netns", "list"]).output().map(|o| !String::from_utf8_lossy(&o.stdout).contains(&format!("conntls-s{}", std::process::id()))).unwrap_or(true));
}
