//! Servers as distributions ship them, built from their Debian source packages (stock and
//! on conntls, with AddressSanitizer) by scripts/servers.sh, and run on loopback: what the
//! server tests (tests/redis.rs, tests/valkey.rs) share.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{build_c, certs, root, scratch_dir, tmp_dir, Link};

/// The trees of one server (`redis-8.0.2`, `valkey-8.1.1`: scripts/servers.sh's names),
/// built once per test binary (a later call of the script finds them built and only checks
/// that nothing changed). A failed fetch or build fails the test with the script's words.
pub fn built(server: &str) -> PathBuf {
    built_flavours(server, "")
}

/// As built, for `flavours` (the script's FLAVOURS) rather than the server's defaults: the
/// ThreadSanitizer trees, which only the tests that use them build.
fn built_flavours(server: &str, flavours: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let asked = format!("{server} {flavours}");
    if !done.iter().any(|s| *s == asked) {
        let out = Command::new(root().join("scripts/servers.sh"))
            .arg(server)
            .env("FLAVOURS", flavours)
            .env("SANITIZER", "address")
            .env("ROOT", root().join("target/servers"))
            .output()
            .expect("run scripts/servers.sh");
        assert!(
            out.status.success(),
            "scripts/servers.sh {server} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        done.push(asked);
    }
    root().join("target/servers").join(server)
}

/// One build of a server: `server` as scripts/servers.sh names it, and its flavour: stock,
/// conntls, or Valkey's TLS-module builds, where `module` is the unmodified server with
/// stock's module loaded and `conntls-module` the same server with the conntls module
/// (built in a tree of its own) loaded in its place; `stock+tsan` and `conntls+tsan` are
/// stock and conntls with ThreadSanitizer in place of AddressSanitizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Build {
    pub server: &'static str,
    pub flavour: &'static str,
}

impl Build {
    pub const fn new(server: &'static str, flavour: &'static str) -> Build {
        Build { server, flavour }
    }

    /// redis or valkey.
    pub fn program(&self) -> &'static str {
        self.server.split('-').next().unwrap_or(self.server)
    }

    /// The stock build this one is compared with: the unmodified server with stock's TLS
    /// built in, or with stock's module for a module flavour.
    pub fn stock(&self) -> Build {
        let stock = match self.flavour {
            f if f.ends_with("module") => "module",
            f if f.ends_with("+tsan") => "stock+tsan",
            _ => "stock",
        };
        Build::new(self.server, stock)
    }

    /// The tree this flavour was built in.
    pub fn tree(&self) -> PathBuf {
        let trees = if self.flavour.ends_with("+tsan") { built_flavours(self.server, "stock+tsan conntls+tsan") } else { built(self.server) };
        trees.join(self.flavour)
    }

    /// One of the tree's programs: `server`, `cli`, `benchmark` (redis-cli, valkey-cli...).
    /// The server of a module flavour is the unmodified one of the `module` tree.
    pub fn binary(&self, tool: &str) -> PathBuf {
        let tree = if self.flavour.ends_with("module") { built(self.server).join("module") } else { self.tree() };
        tree.join("src").join(format!("{}-{tool}", self.program()))
    }

    /// The TLS module a module flavour loads.
    pub fn module(&self) -> Option<PathBuf> {
        self.flavour.ends_with("module").then(|| self.tree().join("src/valkey-tls.so"))
    }

    /// A TLS-only server of this build on a free port (tls_server_args), optionally with
    /// the send-buffer shim.
    pub fn start(&self, shim: bool) -> ServerProcess {
        self.start_with(shim, &[])
    }

    /// As start, with more server options.
    pub fn start_with(&self, shim: bool, options: &[&str]) -> ServerProcess {
        self.start_on(free_port(), shim, options)
    }

    /// As start_with, on `port`.
    pub fn start_on(&self, port: u16, shim: bool, options: &[&str]) -> ServerProcess {
        let mut args = Vec::new();
        if let Some(module) = self.module() {
            args.extend(["--loadmodule".to_string(), module.to_string_lossy().into_owned()]);
        }
        args.extend(tls_server_args(port));
        args.extend(options.iter().map(|s| s.to_string()));
        ServerProcess::start(&self.binary("server"), port, &args, shim)
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.server, self.flavour)
    }
}

/// What a resp_tls_peer trigger left: the peer's exit code and output, whether the server
/// still ran, and the server's logs.
pub struct Outcome {
    pub code: i32,
    pub out: String,
    pub alive: bool,
    pub logs: String,
}

/// Runs resp_tls_peer with the arguments `args` makes for a fresh server of `build`.
pub fn trigger(build: Build, shim: bool, args: impl Fn(&ServerProcess) -> Vec<String>) -> Outcome {
    let mut server = build.start(shim);
    let (code, out) = run_peer(server.port, &args(&server));
    let alive = server.alive();
    let logs = server.stop();
    Outcome { code, out, alive, logs }
}

impl Outcome {
    /// The server held: alive, the peer satisfied (`expect` in its output), no
    /// AddressSanitizer report and no "bad length" in the logs.
    pub fn assert_held(&self, build: Build, expect: &str) {
        let Outcome { code, out, alive, logs } = self;
        assert!(*alive, "{build} died:\n{out}\n{logs}");
        assert_eq!(*code, 0, "{build}: the peer failed:\n{out}\n{logs}");
        assert!(out.contains(expect), "{build}: no '{expect}' from the peer:\n{out}");
        assert!(!logs.contains("AddressSanitizer") && !logs.contains("bad length"), "{build}:\n{logs}");
    }
}

/// Two clients kill each other behind 40,000-byte bulks, 20 rounds (resp_tls_peer's
/// killpair; see tests/redis.rs's pending_list_kill_trigger).
pub fn killpair(server: &ServerProcess) -> Vec<String> {
    vec!["killpair".to_string(), "20".to_string(), server.pid().to_string()]
}

/// A 30 KB and a 16 MiB value, two GETs of each, read 16 KiB a millisecond: with the
/// send-buffer shim, the writev path with replies far past its 64 KiB gather limit.
pub const SIXTEEN_MIB_TRIGGER: [&str; 6] = ["pipeline", "1", "4", "2", "16384", "30000,16777216"];

/// Four 15,000-byte replies gathered into one blocked write, then a 16 MiB reply queued
/// behind them before the retry (resp_tls_peer's gather): the retry of a write that
/// failed with the big reply in the list.
pub const GATHER_TRIGGER: [&str; 4] = ["gather", "4", "15000", "16777216"];

/// One server test at a time: each starts ASan servers and loads two cores on its own, and
/// Redis's own test suite runs servers of its own.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An LD_PRELOAD shim giving every socket a server accepts a 4 KiB send buffer.
pub fn sndbuf_shim() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| build_shim("sndbuf_shim")).clone()
}

/// An LD_PRELOAD shim whose server's first blocking write commits bytes it cannot send,
/// and whose flush of them then fails (c_tests/syncwrite_shim.c).
pub fn syncwrite_shim() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| build_shim("syncwrite_shim")).clone()
}

fn build_shim(name: &str) -> PathBuf {
    let out = tmp_dir().join(format!("{name}-{}.so", std::process::id()));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(root().join(format!("c_tests/{name}.c")))
        .arg("-ldl")
        .status()
        .expect("run cc");
    assert!(status.success(), "cc {name}.c failed");
    out
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

/// Settles a unit of an upstream suite that failed once on `build` (`first`: what it
/// printed): upstream's suites have timing tests that fail now and then on a loaded
/// machine, so the unit runs again. Passing then, it counts (and the output says it was
/// rerun). Failing twice on a conntls build, it runs on the stock build too (again once
/// more if it fails): failing there as well it is upstream's, printed and not held
/// against conntls; passing there, the test fails. A stock build's unit that fails twice
/// fails the test (`build` is stock only where the test is about stock). Returns how
/// many tests the passing run passed (0 for upstream's failure).
fn settle_failed_unit(build: Build, unit: &str, first: String, run: impl Fn(Build) -> Result<usize, String>) -> usize {
    println!("rerun: {build}: {unit} failed; running it once more\n{}", why_it_failed(&first));
    let second = match run(build) {
        Ok(passed) => {
            println!("rerun: {build}: {unit} passed on its rerun");
            return passed;
        }
        Err(second) => second,
    };
    let stock = build.stock();
    assert_ne!(build, stock, "{build}: {unit} failed twice:\n{first}\n--- the rerun:\n{second}");
    let stock_fails = run(stock).is_err() && {
        println!("rerun: {stock}: {unit} failed too; running it once more");
        run(stock).is_err()
    };
    assert!(stock_fails, "{build}: {unit} failed twice, and passes on {stock}:\n{first}\n--- the rerun:\n{second}");
    println!("upstream's: {unit} fails on {build} and on {stock}, each after a rerun; not counted\n{}", why_it_failed(&second));
    0
}

/// What a reader needs of a failed run: the suite's [err] and [exception] lines with the
/// few lines after each (the message; a Tcl exception's stack follows it, for tens of
/// lines), then its last lines.
fn why_it_failed(text: &str) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut shown: Vec<&str> = Vec::new();
    for (i, line) in all.iter().enumerate() {
        if line.contains("[err]") || line.contains("[exception]") {
            shown.extend(&all[i..all.len().min(i + 6)]);
        }
    }
    shown.push("...");
    shown.extend(&all[all.len().saturating_sub(10)..]);
    shown.join("\n")
}

/// The tree's own test suite with --tls (`--tls-module` for a module flavour: the tree's
/// unmodified server loading its src/valkey-tls.so): each of `files` alone (`--single`),
/// with `extra` runtest arguments, must pass, each after one rerun at most (and see
/// settle_failed_unit). Returns how many tests passed.
pub fn run_own_tests(build: Build, files: &[&str], extra: &[&str]) -> usize {
    let mut passed = 0;
    for file in files {
        passed += match run_own_test_file(build, file, extra) {
            Ok(ok) => ok,
            Err(first) => settle_failed_unit(build, file, first, |b| run_own_test_file(b, file, extra)),
        };
    }
    println!("{build}: {passed} passed, 0 failed in {} {}", files.join(" "), extra.join(" "));
    passed
}

/// One file of the tree's suite: Ok(tests passed), or Err(what it printed).
fn run_own_test_file(build: Build, file: &str, extra: &[&str]) -> Result<usize, String> {
    let dir = tree_with_test_certs(build);
    let tls = if build.module().is_some() { "--tls-module" } else { "--tls" };
    let out = Command::new("./runtest")
        .args([tls, "--clients", "2", "--timeout", "600", "--single", file])
        .args(extra)
        .current_dir(&dir)
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .expect("run runtest");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    let ok = text.lines().filter(|l| l.starts_with("[ok]:")).count();
    if out.status.success() && text.contains("All tests passed without errors!") && ok > 0 {
        return Ok(ok);
    }
    Err(format!("./runtest {tls} --single {file} {}:\n{text}{}", extra.join(" "), String::from_utf8_lossy(&out.stderr)))
}

/// The tree, with the certificates its own test suites use (tests/tls).
fn tree_with_test_certs(build: Build) -> PathBuf {
    let dir = build.tree();
    if !dir.join("tests/tls/ca.crt").exists() {
        let out = Command::new("./utils/gen-test-certs.sh").current_dir(&dir).output().expect("gen-test-certs.sh");
        assert!(out.status.success(), "gen-test-certs.sh: {}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

/// The tree's whole Sentinel suite with --tls (`./runtest-sentinel --tls`: five sentinels
/// and five instances, every link TLS with tls-replication, the suite checking each
/// process's log for sanitizer reports). Each unit (a file of tests/sentinel/tests) that
/// fails runs again alone (`--single`), and see settle_failed_unit. Returns how many
/// tests passed.
pub fn run_sentinel_tests(build: Build) -> usize {
    let (text, success) = run_sentinel(build, None);
    let failed = failed_sentinel_units(&text);
    let mut ok = count_sentinel_ok_outside(&text, &failed);
    if !success && failed.is_empty() {
        // A failure no unit owns (the suite's own start or end): the whole suite again.
        return settle_failed_unit(build, "the whole suite", text, |b| sentinel_result(run_sentinel(b, None)));
    }
    for unit in &failed {
        ok += settle_failed_unit(build, unit, text.clone(), |b| sentinel_result(run_sentinel(b, Some(unit))));
    }
    println!("{build}: runtest-sentinel --tls: {ok} passed, 0 failed");
    ok
}

/// `./runtest-sentinel --tls [--single unit]`: its output, and whether it passed.
fn run_sentinel(build: Build, unit: Option<&str>) -> (String, bool) {
    let dir = tree_with_test_certs(build);
    let mut cmd = Command::new("./runtest-sentinel");
    cmd.arg("--tls").current_dir(&dir).env("ASAN_OPTIONS", "detect_leaks=0");
    if let Some(unit) = unit {
        cmd.args(["--single", unit]);
    }
    let out = cmd.output().expect("run runtest-sentinel");
    let text = format!("{}{}", strip_ansi(&String::from_utf8_lossy(&out.stdout)), String::from_utf8_lossy(&out.stderr));
    let success = out.status.success() && text.contains("GOOD! No errors.") && count_sentinel_ok(&text) > 0;
    (text, success)
}

fn sentinel_result((text, success): (String, bool)) -> Result<usize, String> {
    if success {
        Ok(count_sentinel_ok(&text))
    } else {
        Err(text)
    }
}

fn count_sentinel_ok(text: &str) -> usize {
    count_sentinel_ok_outside(text, &[])
}

/// The tests that passed, leaving out the units named in `failed` (they count by their rerun).
fn count_sentinel_ok_outside(text: &str, failed: &[String]) -> usize {
    let mut in_failed = false;
    let mut ok = 0;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Testing unit: ") {
            in_failed = failed.iter().any(|f| f == name.trim());
        } else if line.ends_with(": OK") && !in_failed {
            ok += 1;
        }
    }
    ok
}

/// The units ("Testing unit: 07-down-conditions.tcl") in which a test failed, an error
/// was caught, or a check after the unit (leaks, leaked fds) complained.
pub fn failed_sentinel_units(text: &str) -> Vec<String> {
    let mut unit = None;
    let mut failed: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Testing unit: ") {
            unit = Some(name.trim().to_string());
        } else if line.contains("FAILED") || line.contains("ERROR:") || line.contains("MEMORY LEAK") {
            if let Some(name) = &unit {
                if !failed.contains(name) {
                    failed.push(name.clone());
                }
            }
        }
    }
    failed
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A tree's cli or benchmark (`tool`), connected over TLS with the test client
/// certificate to `server`.
pub fn tls_tool(build: Build, tool: &str, server: &ServerProcess) -> Command {
    tls_command(&build.binary(tool), server.port)
}

/// A redis-cli-style `program` (-h, -p, --tls, --cacert...) for the loopback TLS `port`,
/// with the test client certificate.
pub fn tls_command(program: &Path, port: u16) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(tls_client_args("127.0.0.1", port)).env("ASAN_OPTIONS", "detect_leaks=0");
    cmd
}

/// A redis-cli-style program's arguments for TLS to `host`:`port` with the test client
/// certificate.
pub fn tls_client_args(host: &str, port: u16) -> Vec<std::ffi::OsString> {
    let c = certs();
    let mut args: Vec<std::ffi::OsString> = ["-h", host, "-p", &port.to_string(), "--tls"].map(Into::into).to_vec();
    for (option, file) in [("--cacert", "ca.crt"), ("--cert", "client.crt"), ("--key", "client.key")] {
        args.extend([option.into(), c.join(file).into_os_string()]);
    }
    args
}

/// `cli` (a tree's redis-cli or valkey-cli, TLS on hiredis and OpenSSL) against `server`:
/// a value of `size` bytes SET and read back byte for byte; then the tree's benchmark
/// without errors.
pub fn cli_and_benchmark(cli: Build, server: &ServerProcess, size: usize) {
    let value: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let tls = |tool: &str| tls_tool(cli, tool, server);
    let out = tls("cli").arg("ping").output().expect("run the cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG", "{cli}: {out:?}");
    let out = tls("cli").args(["-x", "set", "big"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut child| {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(value.as_bytes())?;
        child.wait_with_output()
    });
    let out = out.expect("run the cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{cli}: {out:?}");
    let out = tls("cli").args(["--raw", "get", "big"]).output().expect("run the cli");
    assert!(out.stdout == format!("{value}\n").into_bytes(), "{cli}: GET did not return the {size}-byte value");

    let out = tls("benchmark").args(["-n", "20000", "-c", "20", "-t", "set,get,lrange_100", "-q"]).output().expect("run the benchmark");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("rror"), "{cli} benchmark: {text}");
    assert_eq!(text.matches("requests per second").count(), 4, "{text}"); // LRANGE adds its LPUSH
}

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
        ServerProcess::start_preloaded(binary, port, args, shim.then(sndbuf_shim).as_deref())
    }

    /// As start, with `preload` (a shim library) in LD_PRELOAD.
    pub fn start_preloaded(binary: &Path, port: u16, args: &[String], preload: Option<&Path>) -> ServerProcess {
        let mut cmd = Command::new(binary);
        cmd.args(args);
        let server = ServerProcess::spawn(cmd, redis_log_args(), port, preload);
        server.ready_when(binary, |_| TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// As start, for a server that takes neither --logfile nor --dir and logs to stderr
    /// (memcached: `args` make it listen on 127.0.0.1:`port`).
    pub fn start_plain(binary: &Path, port: u16, args: &[String]) -> ServerProcess {
        let mut cmd = Command::new(binary);
        cmd.args(args);
        let server = ServerProcess::spawn(cmd, |_| Vec::new(), port, None);
        server.ready_when(binary, |_| TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// As start, inside the network namespace `ns` (`args` bind its address): ready once
    /// its log says so. `ip netns exec` execs the server, so the PID is the server's.
    pub fn start_in_namespace(ns: &str, binary: &Path, port: u16, args: &[String]) -> ServerProcess {
        ServerProcess::start_in_namespace_until(ns, binary, port, args, "Ready to accept connections")
    }

    /// As start_in_namespace, ready once its log has `line` (a Sentinel says no "Ready").
    pub fn start_in_namespace_until(ns: &str, binary: &Path, port: u16, args: &[String], line: &str) -> ServerProcess {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(binary).args(args);
        let server = ServerProcess::spawn(cmd, redis_log_args(), port, None);
        server.ready_when(binary, |s| s.logs().contains(line))
    }

    /// Starts `cmd` in a scratch directory with the arguments `log_args` gives for its log
    /// file and directory.
    fn spawn(mut cmd: Command, log_args: fn(&Path) -> Vec<std::ffi::OsString>, port: u16, preload: Option<&Path>) -> ServerProcess {
        let dir = scratch_dir();
        let log = dir.join("server.log");
        let stderr = dir.join("server.err");
        cmd.args(log_args(&dir))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("server stderr file"))
            .env_remove("LD_LIBRARY_PATH")
            // Reports go to stderr and the server stops at the first (ASan's default).
            .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
            // ThreadSanitizer's builds (+tsan) report every race and go on.
            .env("TSAN_OPTIONS", format!("halt_on_error=0:history_size=7:suppressions={}", root().join("tests/server-tsan.supp").display()));
        if let Some(shim) = preload {
            // In an AddressSanitizer build, ASan's runtime must be the first library loaded.
            let binary = cmd.get_program().to_owned();
            let needed = Command::new("readelf").arg("-d").arg(&binary).output().expect("readelf -d");
            let preload = if String::from_utf8_lossy(&needed.stdout).contains("libasan") {
                let asan = Command::new("gcc").arg("-print-file-name=libasan.so").output().expect("gcc -print-file-name");
                format!("{} {}", String::from_utf8_lossy(&asan.stdout).trim(), shim.display())
            } else {
                shim.display().to_string()
            };
            cmd.env("LD_PRELOAD", preload);
        }
        let child = cmd.spawn().expect("start the server");
        ServerProcess { child, port, log, stderr }
    }

    /// Waits (at most 60 s) until `ready`; fails the test when the server exits first.
    fn ready_when(mut self, binary: &Path, ready: impl Fn(&ServerProcess) -> bool) -> ServerProcess {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(&self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited at start ({status}):\n{}", binary.display(), self.logs());
            }
            assert!(Instant::now() < deadline, "{} did not listen on {} in 60 s:\n{}", binary.display(), self.port, self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
        self
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

/// A process's state letter from /proc (R, S, T for stopped...), None once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// Polls `done` (every 100 ms) for at most `within`: whether it became true.
pub fn wait_until(within: Duration, done: &dyn Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Valkey 9.1's own races under io-threads, named by the function of an access's first
/// frame, as a seed-001 run on conntls+tsan (with tests/server-tsan-fences.h) showed them:
/// none has an access in the TLS code. They stay reported and counted, never hidden.
const SERVER_OWN_RACES: [&str; 14] = [
    // client.io_read_state and io_write_state: one-byte fields an IO thread sets when its
    // job is done, which the main thread polls without synchronization (io_threads.c,
    // networking.c, server.c's clientsCron, server.h).
    "ioThreadAccept",
    "ioThreadReadQueryFromClient",
    "ioThreadWriteToClient",
    "clientsCron",
    "trySendAcceptToIOThreads",
    "trySendReadToIOThreads",
    "trySendWriteToIOThreads",
    "processClientIOWriteDone",
    "clientConnPostponeMaskFromIOState",
    // client.flag: bits the main thread sets (pending_read, pending_write) in the word of
    // bits an IO thread reads (close_asap, buf_encoded).
    "readToQueryBuf",
    "_writeToClient",
    // zmalloc's per-thread used-memory counters, summed without synchronization.
    "zmalloc_used_memory",
    "update_zmalloc_stat_alloc",
    "update_zmalloc_stat_free",
];

/// ThreadSanitizer's reports in a server's logs (its +tsan builds): `in_tls`, those in the
/// TLS code (src/tls.c, the glue's or stock's, or conntls_glue.h; libconntls is not
/// instrumented): a data race with an access whose first frame is there, any other report
/// (a lock-order inversion...) with a frame there; `server_named`, data races whose every
/// access is in SERVER_OWN_RACES; `server_other`, the rest (the server's own code).
pub struct ThreadSanitizerReports<'a> {
    pub in_tls: Vec<&'a str>,
    pub server_named: usize,
    pub server_other: Vec<&'a str>,
}

pub fn thread_sanitizer_reports(logs: &str) -> ThreadSanitizerReports<'_> {
    let mut found = ThreadSanitizerReports { in_tls: Vec::new(), server_named: 0, server_other: Vec::new() };
    let tls_frame = |f: &str| f.contains("/src/tls.c:") || f.contains("conntls_glue.h:");
    for report in logs.split("==================").filter(|r| r.contains("WARNING: ThreadSanitizer")) {
        let lines: Vec<&str> = report.lines().collect();
        // An access: "Write of size 8 ... by thread T6:" (or Read, Previous write, Atomic
        // read...), then its frames "#0 function file:line (module+offset)".
        let firsts: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(" of size ") && l.trim_end().ends_with(':'))
            .filter_map(|(i, _)| lines.get(i + 1).filter(|f| f.trim_start().starts_with("#0 ")).copied())
            .collect();
        let function = |frame: &str| frame.split_whitespace().nth(1).unwrap_or("").to_string();
        let data_race = report.contains("WARNING: ThreadSanitizer: data race");
        if (data_race && firsts.iter().any(|f| tls_frame(f))) || (!data_race && tls_frame(report)) {
            found.in_tls.push(report);
        } else if data_race && !firsts.is_empty() && firsts.iter().all(|f| SERVER_OWN_RACES.contains(&function(f).as_str())) {
            found.server_named += 1;
        } else {
            found.server_other.push(report);
        }
    }
    found
}

/// Where a Redis-family server writes its log (server.log) and files: its scratch directory.
fn redis_log_args() -> fn(&Path) -> Vec<std::ffi::OsString> {
    |dir| vec!["--logfile".into(), dir.join("server.log").into(), "--dir".into(), dir.into()]
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
