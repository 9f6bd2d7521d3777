//! Seed 004, the 15-minute client outage (the Lettuce report): a primary (with two
//! replicas, so that a write is acknowledged only once WAIT 1 says a replica has it, before
//! and after the failover) made silent in its network namespace (its link down: every
//! packet dropped, no RST) while clients write to it. Two forms:
//!
//! - the cluster: node 0 and two more primaries, node 0's replicas beside them; the
//!   cluster fails over (`cluster-node-timeout 3000`). Clients: libvalkey's cluster
//!   client, hiredis's and libvalkey's plain contexts (the primary looked up in CLUSTER
//!   SLOTS), redis-py's RedisCluster;
//! - Sentinel: the primary and its two replicas, three Sentinels (quorum 2,
//!   `down-after-milliseconds 3000`) fail over. Clients: hiredis's and libvalkey's plain
//!   contexts and redis-py's Sentinel, each asking a Sentinel for the primary.
//!
//! Each client is the same program over conntls (tcp-user-timeout 3 s) and over its
//! library's own TLS with its default settings (c_tests/deploy_client.c,
//! tests/deploy_client.py on the Python binding or on Python's ssl). Measured for each: the
//! time from the silence to its first acknowledged write on the new primary, observed for
//! `window` seconds. Then every acknowledged write is read back.
use super::*;
use common::netns::{ip, Ended, Namespaces};
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

#[derive(Clone, Copy, PartialEq)]
pub enum Form {
    Cluster,
    Sentinel,
}

/// A process of the deployment: its namespace, address and port.
struct Place {
    ns: String,
    addr: &'static str,
    port: u16,
}

/// A client kind: the program (a client library's deploy_client, or python), its mode, and
/// what the table calls it.
struct Kind {
    library: &'static str,
    mode: &'static str,
    what: &'static str,
}

/// A deployment built and settled, before the silence.
struct Deployment {
    /// Node 0 first, the primary to silence, alone in the server namespace.
    places: Vec<Place>,
    processes: Vec<ServerProcess>,
    /// Node 0's replicas (indices of `places`).
    replicas: [usize; 2],
    /// Where clients start: a cluster node or a Sentinel (an index of `places`).
    entry: usize,
    /// A hash tag of node 0's slots (the cluster), any tag (Sentinel).
    tag: String,
    kinds: Vec<Kind>,
    /// deploy_client's mode that reads every acknowledged write back.
    verify_mode: &'static str,
}

impl Deployment {
    /// valkey-cli (the stock tree's) against place `i`, from the clients' namespace.
    fn ask(&self, build: Build, i: usize, args: &[&str]) -> String {
        let place = &self.places[i];
        let out = Command::new("ip")
            .args(["netns", "exec", &self.places[self.entry].ns])
            .arg(build.stock().binary("cli"))
            .args(tls_client_args(place.addr, place.port))
            .args(args)
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).replace('\r', "")).unwrap_or_default()
    }
}

/// Waits (at most 120 s) until `done`; fails the test with `what` otherwise.
fn until(build: Build, what: &str, done: &dyn Fn() -> bool) {
    assert!(wait_until(Duration::from_secs(120), done), "{build}: seed 004: {what} within 120 s");
}

/// A server of `build` at `place` with the TLS options and `options`.
fn start(build: Build, place: &Place, options: &[&str]) -> ServerProcess {
    let mut args = tls_server_args(place.port);
    args.extend(["--bind", place.addr, "--protected-mode", "no"].map(String::from));
    args.extend(options.iter().map(|s| s.to_string()));
    ServerProcess::start_in_namespace(&place.ns, &build.binary("server"), place.port, &args)
}

fn cluster(build: Build, ns: &Namespaces) -> Deployment {
    use common::cluster::NODE_OPTIONS;
    // Node 0 alone in the server namespace; the other two primaries and node 0's replicas
    // beside the clients.
    let places: Vec<Place> = [(&ns.server, Namespaces::SERVER_ADDR, 7000u16), (&ns.client, Namespaces::CLIENT_ADDR, 7001), (&ns.client, Namespaces::CLIENT_ADDR, 7002), (&ns.client, Namespaces::CLIENT_ADDR, 7003), (&ns.client, Namespaces::CLIENT_ADDR, 7004)]
        .into_iter()
        .map(|(ns, addr, port)| Place { ns: ns.clone(), addr, port })
        .collect();
    // Node 0's second replica stays its own: the other primaries have none, and replica
    // migration would move it to one of them (then WAIT 1 on the promoted replica never
    // succeeds).
    let options: Vec<&str> = NODE_OPTIONS.iter().copied().chain(["--cluster-allow-replica-migration", "no"]).collect();
    let processes = places.iter().map(|p| start(build, p, &options)).collect();
    let mut d = Deployment {
        places,
        processes,
        replicas: [3, 4],
        entry: 1,
        tag: String::new(),
        kinds: vec![
            Kind { library: "libvalkey", mode: "failover", what: "libvalkey cluster client" },
            Kind { library: "libvalkey", mode: "failover-plain", what: "libvalkey plain context" },
            Kind { library: "hiredis", mode: "failover-plain", what: "hiredis plain context" },
            Kind { library: "python", mode: "cluster", what: "redis-py RedisCluster" },
        ],
        verify_mode: "verify",
    };
    for (i, range) in [(0, ["0", "5460"]), (1, ["5461", "10922"]), (2, ["10923", "16383"])] {
        assert_eq!(d.ask(build, i, &["cluster", "addslotsrange", range[0], range[1]]).trim(), "OK");
    }
    for p in &d.places {
        d.ask(build, 1, &["cluster", "meet", p.addr, &p.port.to_string(), &(p.port + 10000).to_string()]);
    }
    until(build, "every node knows the others", &|| (0..5).all(|i| d.ask(build, i, &["cluster", "info"]).contains("cluster_known_nodes:5")));
    let primary = d.ask(build, 0, &["cluster", "myid"]).trim().to_string();
    for i in d.replicas {
        until(build, "a replica takes its primary", &|| d.ask(build, i, &["cluster", "replicate", &primary]).trim() == "OK");
    }
    until(build, "the cluster is up with both replicas linked", &|| {
        (0..5).all(|i| d.ask(build, i, &["cluster", "info"]).contains("cluster_state:ok"))
            && d.replicas.iter().all(|&i| d.ask(build, i, &["info", "replication"]).contains("master_link_status:up"))
    });
    d.tag = (0..100)
        .map(|n| format!("t{n}"))
        .find(|t| d.ask(build, 1, &["cluster", "keyslot", &format!("{{{t}}}")]).trim().parse::<u32>().is_ok_and(|s| s <= 5460))
        .expect("a tag in node 0's slots");
    d
}

fn sentinel(build: Build, ns: &Namespaces) -> Deployment {
    // The primary alone in the server namespace; its replicas and three Sentinels beside
    // the clients.
    let place = |ns: &String, addr, port| Place { ns: ns.clone(), addr, port };
    let mut places = vec![place(&ns.server, Namespaces::SERVER_ADDR, 7000)];
    places.extend([7001, 7002, 7005, 7006, 7007].map(|port| place(&ns.client, Namespaces::CLIENT_ADDR, port)));
    let primary = Namespaces::SERVER_ADDR;
    let mut processes = vec![start(build, &places[0], &["--tls-replication", "yes"])];
    for p in &places[1..3] {
        processes.push(start(build, p, &["--tls-replication", "yes", "--replicaof", primary, "7000"]));
    }
    for p in &places[3..] {
        // Sentinel rewrites its configuration file: one of its own, in its scratch directory.
        let conf = scratch_dir().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor mymaster {primary} 7000 2\nsentinel down-after-milliseconds mymaster 3000\n\
                 sentinel failover-timeout mymaster 20000\nsentinel parallel-syncs mymaster 1\n"
            ),
        )
        .expect("write sentinel.conf");
        let mut args = vec![conf.display().to_string(), "--sentinel".into()];
        args.extend(tls_server_args(p.port));
        args.extend(["--bind", p.addr, "--protected-mode", "no", "--tls-replication", "yes"].map(String::from));
        processes.push(ServerProcess::start_in_namespace_until(&p.ns, &build.binary("server"), p.port, &args, "+monitor master mymaster"));
    }
    let d = Deployment {
        places,
        processes,
        replicas: [1, 2],
        entry: 3,
        tag: "t0".into(),
        kinds: vec![
            Kind { library: "libvalkey", mode: "failover-sentinel", what: "libvalkey plain context" },
            Kind { library: "hiredis", mode: "failover-sentinel", what: "hiredis plain context" },
            Kind { library: "python", mode: "sentinel", what: "redis-py Sentinel" },
        ],
        verify_mode: "verify-sentinel",
    };
    until(build, "both replicas linked, every Sentinel seeing them and the others", &|| {
        d.replicas.iter().all(|&i| d.ask(build, i, &["info", "replication"]).contains("master_link_status:up"))
            && (3..6).all(|i| {
                let said = d.ask(build, i, &["sentinel", "master", "mymaster"]);
                said.contains("num-slaves\n2\n") && said.contains("num-other-sentinels\n2\n") && said.contains("flags\nmaster\n")
            })
    });
    d
}

/// deploy_client's (or deploy_client.py's) command for `kind` over `transport`, started
/// in the clients' namespace against the deployment's entry.
fn client(d: &Deployment, kind: &Kind, transport: &str, python: &std::path::Path, name: &str, seconds: &str, acks: &std::path::Path) -> Command {
    let entry = &d.places[d.entry];
    let port = entry.port.to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &entry.ns]);
    if kind.library == "python" {
        cmd.arg(python).arg(root().join("tests/deploy_client.py")).args([kind.mode, name, &d.tag, seconds, "3000"]).arg(acks);
        cmd.args([transport, entry.addr, &port]).args(client_certificates());
    } else {
        deploy_arguments(cmd.arg(client_program("deploy_client", kind.library)), kind.mode, entry.port, transport);
        cmd.args([name, &d.tag, seconds, "3000"]).arg(acks);
    }
    cmd.env("DEPLOY_HOST", entry.addr).env("CONNTLS_LIBRARY", lib_dir().join("libconntls.so.0")).env_remove("LD_LIBRARY_PATH");
    cmd
}

pub fn seed_004(build: Build, form: Form, window: u64) -> String {
    let ns = Namespaces::create().expect("create network namespaces");
    let (sdev, _) = ns.devices();
    let d = match form {
        Form::Cluster => cluster(build, &ns),
        Form::Sentinel => sentinel(build, &ns),
    };
    let python = python_with_binding();
    // Each writes on for the window, less a little: its last line comes in it.
    let seconds = window.saturating_sub(3).to_string();
    let mut clients = Vec::new();
    for (kind, transport) in d.kinds.iter().flat_map(|k| [(k, "conntls"), (k, "openssl")]) {
        let acks = scratch_dir().join("acks");
        let name = format!("{}-{}-{transport}", kind.library, kind.mode);
        let mut child = client(&d, kind, transport, &python, &name, &seconds, &acks)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a failover client");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
        let first = lines.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        assert_eq!(first, "connected", "{build}: the {} over {transport} did not connect", kind.what);
        clients.push((kind, transport, name, Ended(child), lines, acks));
    }
    ip(&["-n", &ns.server, "link", "set", &sdev, "down"]).expect("silence the primary");
    let silence = Instant::now();
    for (_, _, _, Ended(child), _, _) in clients.iter_mut() {
        writeln!(child.stdin.as_mut().expect("stdin"), "go").expect("tell the client");
    }
    until(build, "a replica is promoted", &|| d.replicas.iter().any(|&i| d.ask(build, i, &["info", "replication"]).contains("role:master")));
    let failover_s = silence.elapsed().as_secs_f64();
    let by = if form == Form::Cluster { "the cluster" } else { "Sentinel" };
    let mut report = format!(
        "seed 004 ({by}) on {build}: a replica was promoted {failover_s:.1} s after the silence\n\n\
         | client | first acknowledged write after the silence | acknowledged | lost |\n|---|---|---|---|\n"
    );
    let deadline = silence + Duration::from_secs(window);
    let entry = &d.places[d.entry];
    for (kind, transport, name, mut child, lines, acks) in clients {
        // What it says until the window ends (a client that recovered writes on till then).
        let said: Vec<String> = std::iter::from_fn(|| lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()).collect();
        println!("{build}, the {} over {transport}: {}", kind.what, said.join("; "));
        let recovered = said.iter().find(|l| l.starts_with("recovered after"));
        let recovered_s: Option<f64> = recovered.and_then(|l| l.split_whitespace().nth(2)).and_then(|n| n.parse().ok());
        let _ = child.0.kill();
        let _ = child.0.wait();
        let mut verify = Command::new("ip");
        verify.args(["netns", "exec", &entry.ns]).arg(client_program("deploy_client", "libvalkey"));
        let verify = deploy_arguments(&mut verify, d.verify_mode, entry.port, "conntls")
            .args([&format!("{{{}}}:{name}", d.tag), "64"])
            .arg(&acks)
            .env("DEPLOY_HOST", entry.addr)
            .output()
            .expect("verify");
        let verified = String::from_utf8_lossy(&verify.stdout).into_owned();
        assert!(verified.contains(" acknowledged, "), "{build}: verify: {verified}");
        let (acked, lost) = (number_before(&verified, " acknowledged"), lost_in(&verified));
        let when = recovered_s.map_or(format!("none: still stuck at {window} s"), |s| format!("{s:.1} s"));
        let over = if transport == "conntls" { "conntls (tcp-user-timeout 3 s)" } else { "its own TLS, defaults" };
        report += &format!("| {} over {over} | {when} | {acked} | {lost} |\n", kind.what);
        if transport == "conntls" {
            // Within the user timeout plus the failover, with a wide margin for a slow machine.
            let bound = 3.0 + failover_s + 20.0;
            assert!(recovered_s.is_some_and(|s| s <= bound), "{build}: the {} over conntls: {when} (bound {bound:.1} s)\n{report}", kind.what);
            assert_eq!(lost, 0.0, "{build}: acknowledged writes lost by the {} over conntls\n{report}", kind.what);
        } else if kind.library != "python" {
            // The trigger still bites: over its own TLS with its defaults the C client is
            // still writing into the silence (it would for ~15 minutes of retransmits).
            // redis-py 8 is not: its default socket timeout (5 s) ends the wait; recorded.
            assert!(recovered_s.is_none(), "{build}: the {} over its own TLS recovered: the comparison shows nothing\n{report}", kind.what);
        }
    }
    drop(d.processes);
    drop(ns);
    report
}
