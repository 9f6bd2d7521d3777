//! The deployments the bug reports came from, rebuilt on this machine (issue 28): TLS
//! clusters with replicas under load, churn and rotation, stock and conntls side by side,
//! every acknowledged write read back after each run.
//!
//! - Seed 000, "bad length" (valkey #1135): 3 primaries with a replica each, replicas
//!   serving reads (READONLY), the stock tree's benchmark in cluster mode with 32 KiB
//!   values, 50 clients and 2 threads, a writer recording what was acknowledged.
//! - Seed 001, the IO-thread handshake crash (valkey #1883): the same cluster with
//!   `--io-threads 4`, writers at up to 4,000 SETs a second in all, clients leaving
//!   mid-handshake at three points (resp_tls_peer churn), every node's certificate
//!   rotated every 2 s (`CONFIG SET tls-cert-file`, and `tls-auto-reload-interval 1`
//!   where the server has it).
//!
//! - Seed 004, the 15-minute client outage (the Lettuce report): a primary silenced in its
//!   network namespace while clients write with WAIT 1; the cluster, or Sentinel, fails
//!   over (deployments/seed_004.rs).
//!
//! Each soak run prints one table, stock and conntls side by side. On stock the writers use
//! libvalkey's own TLS, on conntls its conntls transport (c_tests/deploy_client.c). The
//! short forms here run in `make test` on the conntls builds only (12 s of load, on
//! Valkey 9.1; seed 004 on 8.1.1) and assert: every node alive, no assertion, no sanitizer
//! report, no "bad length", no acknowledged write lost. `make soak` runs the same for
//! the seeds' own window (15 minutes a seed: SOAK_SECONDS, default 450 per build) on
//! DEPLOY_SERVERS (default valkey-9.1); results in BENCHMARKS.md.
mod common;
#[path = "deployments/seed_004.rs"]
mod seed_004;
use common::client_programs::client_program;
use common::cluster::Cluster;
use common::servers::*;
use common::*;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use seed_004::{seed_004, Form};

/// How long a run lasts.
#[derive(Clone, Copy)]
struct Window {
    seconds: u64,
}

impl Window {
    fn short() -> Window {
        Window { seconds: 12 }
    }

    /// A seed's own window, 15 minutes, halved between stock and conntls.
    fn soak() -> Window {
        Window { seconds: std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(450) }
    }
}

/// The servers of make soak's runs: DEPLOY_SERVERS, comma-separated names of
/// scripts/servers.sh (valkey-8.1.1, redis-8.0.2...), valkey-9.1 by default.
fn soak_servers() -> Vec<&'static str> {
    let names = std::env::var("DEPLOY_SERVERS").unwrap_or_else(|_| "valkey-9.1".into());
    names.split(',').map(|n| &*Box::leak(n.trim().to_string().into_boxed_str())).collect()
}

fn builds(server: &'static str) -> [Build; 2] {
    [Build::new(server, "stock"), Build::new(server, "conntls")]
}

/// The server of the short forms in make test.
const SHORT_SERVER: &str = "valkey-9.1";

/// What one run on one build came to: a row of its table.
#[derive(Default)]
struct Row {
    build: String,
    /// The load's requests a second and the worst p99 of its tests (ms).
    rps: f64,
    p99_ms: f64,
    load_errors: usize,
    /// Lines of the nodes' logs: "bad length"; connections closed after a failed write or
    /// read; failed accepts (handshakes).
    bad_length: usize,
    write_errors: usize,
    read_errors: usize,
    accept_errors: usize,
    /// Nodes that died, assertions and AddressSanitizer reports.
    crashes: usize,
    /// ThreadSanitizer's reports (its builds only), as thread_sanitizer_reports sorts
    /// them: in the TLS code; the server's own, named; the server's, not named.
    races_in_tls: usize,
    races_server_named: usize,
    races_server_other: usize,
    /// The writers' SETs: acknowledged, failed, a second; then lost (or wrong) on read-back.
    acked: usize,
    failed: usize,
    sets_per_s: f64,
    lost: usize,
    replica_reads: usize,
    replica_errors: usize,
    rotations: usize,
}

fn count_lines(logs: &str, needle: &str) -> usize {
    logs.lines().filter(|l| l.contains(needle)).count()
}

impl Row {
    /// The writers' counts and read-back (their values of `size` bytes), then what the
    /// nodes' logs say once the cluster stopped.
    fn finish(mut self, build: Build, mut cluster: Cluster, writers: Vec<(String, Child, PathBuf)>, size: usize) -> Row {
        // Read back through a node still running (a node that died counts as a crash).
        let port = cluster.nodes.iter_mut().find_map(|n| n.alive().then_some(n.port)).unwrap_or(cluster.nodes[0].port);
        account(&mut self, build, port, writers, size);
        self.count_logs(build, cluster);
        self
    }

    /// Stops the cluster and counts what its nodes' logs say.
    fn count_logs(&mut self, build: Build, mut cluster: Cluster) {
        let dead = cluster.nodes.iter_mut().map(|n| usize::from(!n.alive())).sum::<usize>();
        let logs = cluster.stop();
        self.build = build.to_string();
        self.bad_length = count_lines(&logs, "bad length");
        self.write_errors = count_lines(&logs, "Error writing to client");
        self.read_errors = count_lines(&logs, "Reading from client:");
        self.accept_errors = count_lines(&logs, "Error accepting a client connection");
        self.crashes = dead + count_lines(&logs, "ASSERTION FAILED") + count_lines(&logs, "ERROR: AddressSanitizer");
        let races = thread_sanitizer_reports(&logs);
        for race in &races.in_tls {
            println!("{build}: ThreadSanitizer, in the TLS code:{race}");
        }
        if let Some(race) = races.server_other.first() {
            println!("{build}: ThreadSanitizer, the server's own, not named; the first of {}:{race}", races.server_other.len());
        }
        (self.races_in_tls, self.races_server_named, self.races_server_other) = (races.in_tls.len(), races.server_named, races.server_other.len());
    }

    /// The asserts of a run on conntls: no node crashed, no "bad length", writes were
    /// acknowledged and none of them was lost.
    fn assert_conntls(&self, seed: &str) {
        assert_eq!(self.crashes, 0, "{seed} {}: crashes", self.build);
        assert_eq!(self.bad_length, 0, "{seed} {}: bad length", self.build);
        assert_eq!(self.lost, 0, "{seed} {}: acknowledged writes lost", self.build);
        assert!(self.acked > 0, "{seed} {}: no write acknowledged", self.build);
    }
}

fn table(title: &str, rows: &[Row]) -> String {
    let mut t = format!(
        "{title}\n\n| build | load req/s | load p99 ms | load errors | bad length | write errors | read errors | \
         accept errors | crashes | SETs acked | SETs failed | SET/s | lost | replica reads | replica errors | rotations |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        t += &format!(
            "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |\n",
            r.build, r.rps, r.p99_ms, r.load_errors, r.bad_length, r.write_errors, r.read_errors, r.accept_errors,
            r.crashes, r.acked, r.failed, r.sets_per_s, r.lost, r.replica_reads, r.replica_errors, r.rotations
        );
    }
    t
}

/// The test CA and client certificate and key, as the client programs take them.
fn client_certificates() -> [PathBuf; 3] {
    let c = certs();
    [c.join("ca.crt"), c.join("client.crt"), c.join("client.key")]
}

/// Appends deploy_client's leading arguments to `cmd` (the program, or `ip netns exec` and
/// the program): MODE PORT CA CERT KEY TRANSPORT.
fn deploy_arguments<'a>(cmd: &'a mut Command, mode: &str, port: u16, transport: &str) -> &'a mut Command {
    cmd.arg(mode).arg(port.to_string()).args(client_certificates()).arg(transport).env_remove("LD_LIBRARY_PATH")
}

/// deploy_client (libvalkey) against node `port`: over conntls for a conntls build, over
/// libvalkey's own TLS for stock.
fn deploy_client(build: Build, port: u16, mode: &str, args: &[String]) -> Command {
    let transport = if build.flavour == "stock" { "openssl" } else { "conntls" };
    let mut cmd = Command::new(client_program("deploy_client", "libvalkey"));
    deploy_arguments(&mut cmd, mode, port, transport).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// What `deploy_client verify` found missing or wrong.
fn lost_in(verified: &str) -> f64 {
    number_before(verified, " lost") + number_before(verified, " wrong")
}

fn output_of(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for a client");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The number right before `label` in a client's line ("123 lost").
fn number_before(text: &str, label: &str) -> f64 {
    let Some(head) = text.split(label).next().filter(|h| h.len() < text.len()) else { return 0.0 };
    head.rsplit(|c: char| !c.is_ascii_digit() && c != '.').find(|s| !s.is_empty()).and_then(|n| n.parse().ok()).unwrap_or(0.0)
}

/// The number right after `label` ("acked 123").
fn number_after(text: &str, label: &str) -> f64 {
    let Some(rest) = text.split(label).nth(1) else { return 0.0 };
    rest.split(|c: char| !c.is_ascii_digit() && c != '.').next().and_then(|n| n.parse().ok()).unwrap_or(0.0)
}

/// A writer: SETs of `size` bytes at `rate` a second for the window; its acknowledged keys
/// go to the file `acks`.
fn writer(build: Build, port: u16, name: &str, window: Window, rate: u32, size: usize) -> (String, Child, PathBuf) {
    let acks = scratch_dir().join("acks");
    let args = [name.to_string(), window.seconds.to_string(), "100000000".into(), rate.to_string(), size.to_string(), acks.display().to_string()];
    (name.to_string(), deploy_client(build, port, "write", &args).spawn().expect("start a writer"), acks)
}

/// The writers' outputs and the read-back of what they acknowledged, into `row`.
fn account(row: &mut Row, build: Build, port: u16, writers: Vec<(String, Child, PathBuf)>, size: usize) {
    for (name, child, acks) in writers {
        let said = output_of(child);
        println!("{build}: {}", said.trim());
        row.acked += number_after(&said, "acked ") as usize;
        row.failed += number_after(&said, "failed ") as usize;
        row.sets_per_s += number_before(&said, " SET/s");
        let verified = output_of(deploy_client(build, port, "verify", &[name, size.to_string(), acks.display().to_string()]).spawn().expect("verify"));
        println!("{build}: {}", verified.trim());
        assert!(verified.contains(" acknowledged, "), "{build}: verify: {verified}");
        row.lost += lost_in(&verified) as usize;
    }
}

/// Rounds of the stock tree's benchmark in cluster mode (`args`) against node `port` until
/// `deadline` (at least one, at most 1,000): requests a second over all rounds, the worst
/// p99, and the rounds with an error.
fn load_rounds(build: Build, port: u16, args: &[&str], deadline: Instant) -> (f64, f64, usize) {
    let (mut requests, mut seconds, mut p99, mut errors) = (0.0, 0.0, 0.0f64, 0);
    for _ in 0..1000 {
        let started = Instant::now();
        // The benchmark retries a lost node without end: a round gets at most 10 minutes.
        let benchmark = tls_command(&build.stock().binary("benchmark"), port);
        let mut bounded = Command::new("timeout");
        bounded.arg("600").arg(benchmark.get_program()).args(benchmark.get_args()).env("ASAN_OPTIONS", "detect_leaks=0");
        let out = bounded.args(["--cluster", "--csv"]).args(args).output().expect("run the benchmark");
        let took = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        // "test","rps","avg","min","p50","p95","p99","max" per test.
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|l| l.split("\",\"").map(|f| f.trim_matches('"').parse().unwrap_or(0.0)).collect())
            .filter(|r: &Vec<f64>| r.len() >= 7)
            .collect();
        if !out.status.success() || rows.is_empty() || err.contains("rror") {
            errors += 1;
            println!("{build}: benchmark round failed: {text}{err}");
        }
        for r in &rows {
            // Each test's requests took their share of the round.
            requests += r[1] * took / rows.len() as f64;
            p99 = p99.max(r[6]);
        }
        seconds += took;
        if Instant::now() >= deadline {
            break;
        }
    }
    (requests / seconds.max(1e-9), p99, errors)
}

/// Seed 000 on `build`: see the file's comment.
fn seed_000(build: Build, window: Window) -> Row {
    let cluster = Cluster::start(build, 3, 1, &[]);
    let port = cluster.nodes[0].port;
    let writers = vec![writer(build, port, "w000", window, 500, 1024)];
    let readers: Vec<Child> = cluster
        .with_role("slave")
        .into_iter()
        .map(|i| deploy_client(build, cluster.nodes[i].port, "read-replica", &["w000".into(), window.seconds.to_string()]).spawn().expect("start a reader"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(window.seconds);
    // No -r: in cluster mode the benchmark names its keys after a slot's hash tag, so with
    // -r 10000 nearly every SET made a new key and a 15-minute window ran a node out of
    // memory (2026-12-07); without it there is one key per tag, at most 16,384 x 32 KiB.
    let (rps, p99, load_errors) = load_rounds(build, port, &["-t", "set,get", "-d", "32768", "-c", "50", "--threads", "2", "-n", "2000"], deadline);
    let mut replica = (0, 0);
    for reader in readers {
        let said = output_of(reader);
        println!("{build}: {}", said.trim());
        replica.0 += number_after(&said, "served ") as usize;
        replica.1 += number_after(&said, "errors ") as usize;
    }
    Row { rps, p99_ms: p99, load_errors, replica_reads: replica.0, replica_errors: replica.1, ..Row::default() }.finish(build, cluster, writers, 1024)
}

/// Seed 000 in `make test`: 12 s of load on the conntls build (stock's side is in make
/// soak: nothing here fails on stock reliably).
#[test]
fn seed_000_replicas_serving_reads_under_32_kib_writes() {
    let _serial = one_at_a_time();
    let row = seed_000(Build::new(SHORT_SERVER, "conntls"), Window::short());
    println!("{}", table("seed 000 (short form)", std::slice::from_ref(&row)));
    row.assert_conntls("seed 000");
    assert_eq!(row.load_errors + row.replica_errors, 0, "seed 000 conntls: errors");
    assert!(row.replica_reads > 0, "seed 000 conntls: the replicas served no read");
}

/// Installs certificate `name` (server or server2: the same names, another key) as the
/// pair `slot` in `dir`: cert-SLOT.pem and key-SLOT.pem, each written beside and renamed
/// into place. Returns the two paths.
fn install_pair(dir: &std::path::Path, name: &str, slot: usize) -> (String, String) {
    let mut paths = Vec::new();
    for (what, ext) in [("cert", "crt"), ("key", "key")] {
        let path = dir.join(format!("{what}-{slot}.pem"));
        let next = dir.join(format!("{what}-{slot}.pem.next"));
        std::fs::copy(certs().join(format!("{name}.{ext}")), &next).expect("copy a certificate");
        std::fs::rename(&next, &path).expect("rename a certificate into place");
        paths.push(path.display().to_string());
    }
    (paths[0].clone(), paths[1].clone())
}

/// Seed 001 on `build`: see the file's comment.
fn seed_001(build: Build, window: Window) -> Row {
    let live = scratch_dir();
    let (cert, key) = install_pair(&live, "server", 0);
    let mut options = vec!["--io-threads", "4", "--tls-cert-file", &cert, "--tls-key-file", &key];
    if build.server.starts_with("valkey-9") {
        options.extend(["--tls-auto-reload-interval", "1"]);
    }
    let cluster = Cluster::start(build, 3, 1, &options);
    let port = cluster.nodes[0].port;
    // Four writers of 1,000 SETs a second each, one round trip at a time: what this
    // machine sustains of it is the table's SET/s.
    let writers = ["w001a", "w001b", "w001c", "w001d"].map(|name| writer(build, port, name, window, 1000, 128)).into();
    let deadline = Instant::now() + Duration::from_secs(window.seconds);
    let primaries: Vec<u16> = cluster.with_role("master").into_iter().map(|i| cluster.nodes[i].port).collect();
    let churn = std::thread::spawn(move || {
        let (mut rounds, mut failures) = (0, 0);
        while Instant::now() < deadline && rounds < 10_000 {
            for &p in &primaries {
                let (code, said) = run_peer(p, &["churn", "150"]);
                if code != 0 {
                    failures += 1;
                    println!("churn on {p}: {said}");
                }
            }
            rounds += 1;
        }
        (rounds, failures)
    });
    let mut rotations = 0;
    for round in 1..=100_000usize {
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        let (cert, key) = install_pair(&live, if round % 2 == 1 { "server2" } else { "server" }, round % 2);
        for i in 0..cluster.nodes.len() {
            let said = cluster.ask(i, &["config", "set", "tls-cert-file", &cert, "tls-key-file", &key]);
            if said.trim() == "OK" {
                rotations += 1;
            } else {
                println!("{build}: rotation {round} on node {i}: {said}");
            }
        }
    }
    let (churn_rounds, churn_failures) = churn.join().expect("the churn thread");
    println!("{build}: {churn_rounds} churn rounds of 150 clients per primary, {churn_failures} ended with a node not answering");
    Row { load_errors: churn_failures, rotations, ..Row::default() }.finish(build, cluster, writers, 128)
}

/// Seed 001 in `make test`: 12 s on the conntls build (ASan; stock's side in make soak).
#[test]
fn seed_001_io_threads_churn_and_rotation() {
    let _serial = one_at_a_time();
    let row = seed_001(Build::new(SHORT_SERVER, "conntls"), Window::short());
    println!("{}", table("seed 001 (short form)", std::slice::from_ref(&row)));
    row.assert_conntls("seed 001");
    assert_eq!(row.load_errors, 0, "seed 001 conntls: a node stopped answering after a churn");
    assert!(row.rotations > 0, "seed 001 conntls: no rotation applied");
}

/// `make soak`: issue 28's ThreadSanitizer run, seed 001's short form on Valkey 9.1 on
/// conntls built with ThreadSanitizer (io-threads 4, churn, rotation; libconntls, libssl
/// and libcrypto are not instrumented: tests/server-tsan.supp): no report in the glue
/// (src/tls.c, conntls_glue.h). The server's own races are counted and printed, not
/// asserted (common::servers's SERVER_OWN_RACES names the ones seen).
#[test]
#[ignore = "soak: make soak"]
fn seed_001_thread_sanitizer_soak() {
    let _serial = one_at_a_time();
    let row = seed_001(Build::new(SHORT_SERVER, "conntls+tsan"), Window::short());
    println!("{}", table("seed 001 (short form) under ThreadSanitizer", std::slice::from_ref(&row)));
    println!(
        "ThreadSanitizer: {} reports in the TLS code; the server's own: {} of the named races, {} others",
        row.races_in_tls, row.races_server_named, row.races_server_other
    );
    row.assert_conntls("seed 001 (TSan)");
    assert_eq!(row.races_in_tls, 0, "ThreadSanitizer reports in the TLS code (printed above)");
}

/// `make soak`: seeds 000 and 001 for each seed's own window (SOAK_SECONDS per build,
/// default 450: 15 minutes a seed) on each of DEPLOY_SERVERS (default valkey-9.1), stock
/// and conntls; the tables are printed for BENCHMARKS.md.
#[test]
#[ignore = "soak: make soak"]
fn deployments_soak() {
    let _serial = one_at_a_time();
    let window = Window::soak();
    for server in soak_servers() {
        let rows: Vec<Row> = builds(server).map(|b| seed_000(b, window)).into();
        println!("{}", table(&format!("seed 000 on {server}, {} s per build", window.seconds), &rows));
        rows[1].assert_conntls("seed 000");
        let rows: Vec<Row> = builds(server).map(|b| seed_001(b, window)).into();
        println!("{}", table(&format!("seed 001 on {server}, {} s per build", window.seconds), &rows));
        rows[1].assert_conntls("seed 001");
    }
    if common::netns::Namespaces::create().is_ok() {
        for form in [Form::Cluster, Form::Sentinel] {
            for build in builds(SEED_004_SERVER) {
                println!("{}", seed_004(build, form, 60));
            }
        }
    } else {
        println!("SKIPPED seed 004: cannot create network namespaces here (needs root and ip netns)");
    }
}

/// The server of seed 004 (the issue's: Valkey 8.1.1).
const SEED_004_SERVER: &str = "valkey-8.1.1";

/// Seed 004 in `make test` (needs root for the namespaces; skipped, saying so, without):
/// Valkey 8.1.1 on conntls, each form observed for 20 s; make soak runs both on stock and
/// conntls servers for 60 s.
#[test]
fn black_hole_failover_seed_004() {
    let _serial = one_at_a_time();
    println!("{}", seed_004(Build::new(SEED_004_SERVER, "conntls"), Form::Cluster, 20));
}

#[test]
fn black_hole_failover_seed_004_sentinel() {
    let _serial = one_at_a_time();
    println!("{}", seed_004(Build::new(SEED_004_SERVER, "conntls"), Form::Sentinel, 20));
}
