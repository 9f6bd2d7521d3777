//! examples/resp_server.c as a test peer: started on free ports with a live copy of the
//! test certificates (so a test can rotate them), stopped by PID.
use super::*;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub tls_port: u16,
    pub plain_port: u16,
    pub live: PathBuf,
}

impl Server {
    /// Starts resp_server on free ports with live/cert.pem and live/key.pem.
    pub fn start(extra: &[&str]) -> Server {
        let exe = build_c_example("resp_server");
        let live = scratch_dir();
        std::fs::copy(certs().join("server.crt"), live.join("cert.pem")).unwrap();
        std::fs::copy(certs().join("server.key"), live.join("key.pem")).unwrap();
        let mut child = Command::new(exe)
            .env_remove("LD_LIBRARY_PATH")
            .args(["--tls-port", "0", "--port", "0", "--ca"])
            .arg(certs().join("ca.crt"))
            .arg("--cert")
            .arg(live.join("cert.pem"))
            .arg("--key")
            .arg(live.join("key.pem"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start resp_server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let ports: Vec<u16> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).filter(|p| *p > 1000).collect();
        assert_eq!(ports.len(), 2, "{line}");
        Server { child, tls_port: ports[0], plain_port: ports[1], live }
    }

    /// Swaps the live certificate to `name` (server or server2): key first, both renamed
    /// into place, as a deploy tool would.
    pub fn rotate_to(live: &Path, name: &str) {
        for (from, to) in [(format!("{name}.key"), "key.pem"), (format!("{name}.crt"), "cert.pem")] {
            let tmp = live.join(format!("{to}.tmp"));
            std::fs::copy(certs().join(from), &tmp).unwrap();
            std::fs::rename(&tmp, live.join(to)).unwrap();
        }
    }

    /// Sends `sig` to the server (by its PID: only the process this test started).
    pub fn signal(&self, sig: i32) {
        unsafe { libc_kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, then the stats line.
    pub fn stop(mut self) -> String {
        self.signal(15);
        let mut out = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        self.child.wait().unwrap();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn build_c_example(name: &str) -> PathBuf {
    build_program(&root().join("examples").join(format!("{name}.c")), Link::Shared, &[])
}

