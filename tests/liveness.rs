//! c_tests/liveness.c: socket options on loopback, and dead peers in a black hole made of
//! two network namespaces this test creates and always removes.
mod common;
use common::*;

use std::process::Command;

#[test]
fn options_and_defaults_reach_the_socket() {
    run_c("liveness", Link::Shared, &["options"]);
}

/// Two namespaces joined by a veth pair; both removed on drop, even when the test fails.
struct Namespaces {
    server: String,
    client: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Namespaces {
    const SERVER_ADDR: &'static str = "10.213.77.1";
    const CLIENT_ADDR: &'static str = "10.213.77.2";

    fn create() -> Result<Namespaces, String> {
        let id = std::process::id();
        let ns = Namespaces { server: format!("conntls-s{id}"), client: format!("conntls-c{id}") };
        ip(&["netns", "add", &ns.server])?;
        ip(&["netns", "add", &ns.client])?;
        let (sdev, cdev) = ns.devices();
        ip(&["link", "add", &sdev, "netns", &ns.server, "type", "veth", "peer", "name", &cdev, "netns", &ns.client])?;
        for (name, dev, addr) in [(&ns.server, &sdev, Self::SERVER_ADDR), (&ns.client, &cdev, Self::CLIENT_ADDR)] {
            ip(&["-n", name, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", name, "link", "set", dev, "up"])?;
            ip(&["-n", name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    fn devices(&self) -> (String, String) {
        let id = std::process::id();
        (format!("cts{id}"), format!("ctc{id}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth pair, and with it the other end.
        let _ = ip(&["netns", "del", &self.server]);
        let _ = ip(&["netns", "del", &self.client]);
    }
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
