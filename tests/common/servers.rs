//! Servers as distributions ship them, built from their Debian source packages (stock and
//! on conntls, with AddressSanitizer) by scripts/redis-servers.sh, and run on loopback:
//! what the server tests (tests/redis.rs) share.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{build_c, certs, root, scratch_dir, tmp_dir, Link};

/// The servers of every version, built once per test binary (a later call of the script
/// finds them built and only checks that nothing changed). A failed fetch or build fails
/// the test with the script's own words.
pub fn redis_servers() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(root().join("scripts/redis-servers.sh"))
            .env("SANITIZER", "address")
            .env("ROOT", root().join("target/servers"))
            .output()
            .expect("run scripts/redis-servers.sh");
        assert!(
            out.status.success(),
            "scripts/redis-servers.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        root().join("target/servers")
    })
}

/// One server test at a time: each starts ASan servers and loads two cores on its own, and
/// Redis's own test suite runs servers of its own.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An LD_PRELOAD shim giving every socket a server accepts a 4 KiB send buffer.
pub fn sndbuf_shim() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let out = tmp_dir().join(format!("sndbuf_shim-{}.so", std::process::id()));
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(root().join("c_tests/sndbuf_shim.c"))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "cc sndbuf_shim.c failed");
        out
    })
    .clone()
}

/// c_tests/resp_tls_peer.c: a TLS client of the server on plain OpenSSL.
pub fn resp_peer() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build_c("resp_tls_peer", Link::Shared, &["-lssl"])).clone()
}

/// Runs resp_tls_peer against `port` with the test client certificate; returns its exit
/// code and output.
pub fn run_peer<S: AsRef<std::ffi::OsStr>>(port: u16, args: &[S]) -> (i32, String) {
    let c = certs();
    let out = Command::new(resp_peer())
        .arg(port.to_string())
        .args([c.join("ca.crt"), c.join("client.crt"), c.join("client.key")])
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run resp_tls_peer");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The arguments of a TLS-only Redis or Valkey server of the test certificates on `port`
/// (mutual TLS, the default), logging at verbose: a failed client write ("bad length") is
/// logged there.
pub fn tls_server_args(port: u16) -> Vec<String> {
    let c = certs();
    let path = |name: &str| c.join(name).to_string_lossy().into_owned();
    let mut args: Vec<String> = ["--port", "0", "--tls-port", &port.to_string()].iter().map(|s| s.to_string()).collect();
    for (option, file) in [("--tls-cert-file", "server.crt"), ("--tls-key-file", "server.key"), ("--tls-ca-cert-file", "ca.crt")] {
        args.extend([option.to_string(), path(file)]);
    }
    args.extend(["--save", "", "--appendonly", "no", "--loglevel", "verbose", "--enable-debug-command", "yes"].map(String::from));
    args
}

/// The "bad length" trigger for resp_tls_peer: four pipelining clients reading 1 KiB a
/// millisecond with three 40 KB replies in flight, so that the server's reply list grows
/// between a blocked write and its retry (with the send-buffer shim).
pub const BAD_LENGTH_TRIGGER: [&str; 6] = ["pipeline", "4", "40", "3", "1024", "40000"];

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A server process started by a test; stopped (SIGTERM, then SIGKILL after 30 s) when
/// dropped, by its PID.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub stderr: PathBuf,
}

impl ServerProcess {
    /// Starts `binary` with `args` (which must make it serve TLS on `port` on loopback),
    /// optionally with the send-buffer shim, and waits until the port accepts.
    pub fn start(binary: &Path, port: u16, args: &[String], shim: bool) -> ServerProcess {
        let dir = scratch_dir();
        let log = dir.join("server.log");
        let stderr = dir.join("server.err");
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .arg("--logfile")
            .arg(&log)
            .arg("--dir")
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("server stderr file"))
            .env_remove("LD_LIBRARY_PATH")
            // Reports go to stderr and the server stops at the first (ASan's default).
            .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0");
        if shim {
            // In an AddressSanitizer build, ASan's runtime must be the first library loaded.
            let needed = Command::new("readelf").arg("-d").arg(binary).output().expect("readelf -d");
            let preload = if String::from_utf8_lossy(&needed.stdout).contains("libasan") {
                let asan = Command::new("gcc").arg("-print-file-name=libasan.so").output().expect("gcc -print-file-name");
                format!("{} {}", String::from_utf8_lossy(&asan.stdout).trim(), sndbuf_shim().display())
            } else {
                sndbuf_shim().display().to_string()
            };
            cmd.env("LD_PRELOAD", preload);
        }
        let child = cmd.spawn().expect("start the server");
        let mut server = ServerProcess { child, port, log, stderr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{} exited at start ({status}):\n{}", binary.display(), server.logs());
            }
            assert!(Instant::now() < deadline, "{} did not listen on {port} in 60 s:\n{}", binary.display(), server.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's process id (for a trigger that stops and continues it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most 60 s) for the process to end by itself, as a server does after an
    /// AddressSanitizer report; whether it ended.
    pub fn ended(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.alive()
    }

    /// The server's log file and what it wrote to stderr (AddressSanitizer's reports).
    pub fn logs(&self) -> String {
        let read = |p: &Path| {
            let mut s = String::new();
            if let Ok(mut f) = std::fs::File::open(p) {
                let _ = f.read_to_string(&mut s);
            }
            s
        };
        format!("--- log\n{}\n--- stderr\n{}", read(&self.log), read(&self.stderr))
    }

    /// Stops the server and returns its log and stderr.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.logs()
    }

    fn terminate(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = self.child.id() as i32;
        unsafe { kill(pid, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.alive() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
