//! Two network namespaces joined by a veth pair, for the black-hole tests (tests/liveness.rs,
//! tests/clients.rs, tests/valkey91.rs): made by the test and always removed.
use std::process::Command;

/// Two namespaces joined by a veth pair; both removed on drop, even when the test fails.
pub struct Namespaces {
    pub server: String,
    pub client: String,
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Namespaces {
    pub const SERVER_ADDR: &'static str = "10.213.77.1";
    pub const CLIENT_ADDR: &'static str = "10.213.77.2";

    pub fn create() -> Result<Namespaces, String> {
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

    pub fn devices(&self) -> (String, String) {
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


/// A process a test started (in a namespace, where ServerProcess does not fit), killed by
/// its PID and reaped when dropped, even when the test fails.
pub struct Ended(pub std::process::Child);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
