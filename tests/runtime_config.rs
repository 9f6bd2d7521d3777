//! What operators do to a running server: every `tls-*` option stock accepts at runtime,
//! `CONFIG SET` to each meaningful value (valid and invalid) on stock and on conntls side by
//! side, and after each change the same things checked on both: the reply, `CONFIG GET`,
//! whether a new client connects without and with a certificate, whether a client connected
//! before the change still works, and at the end of each option `CONFIG REWRITE`'s file.
//! The option list is read from stock's own `CONFIG GET tls-*`: an option with no steps
//! here fails the test, so a new one is never skipped. A difference from stock fails the
//! test unless DELIBERATE lists it with its reason (contrib/*/README.md says the same).
//! On Valkey 8.1.1 built in, the servers are also replicas (over TLS, of a primary of their
//! own build), and after each accepted change of an option that the replication link uses,
//! the link is dropped and must come back, or stay down, as on stock; and, in a pass of
//! their own, cluster nodes with a peer over the TLS cluster bus, checked the same way.
mod common;
use common::servers::*;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// Differences from stock that conntls makes on purpose: (server prefix, option, value,
/// why). A step whose observations differ is accepted only when listed here.
const DELIBERATE: &[(&str, &str, &str, &str)] = &[
    (
        "",
        "tls-cert-file",
        "expired.crt",
        "conntls refuses a certificate outside its validity period when it is loaded, as \
         Valkey 9 does; stock Redis and Valkey 8.1 load it, and every new client then fails \
         to verify the server",
    ),
    (
        "",
        "tls-ca-cert-dir",
        "{missing}",
        "conntls refuses a ca-cert-dir that does not exist (a mistyped path is an error at \
         CONFIG SET); stock accepts it and looks up nothing there",
    ),
];

/// The steps for an option: each one CONFIG SET call of one or more (option, value) pairs.
/// `{certs}` is the test certificates' directory, `{cadir}` a directory holding only the
/// test CA, `{missing}` a path that does not exist,
/// `{free}` a free port (each server its own), `{orig}` the option's value at start.
fn steps(option: &str) -> Option<Vec<Vec<(&'static str, &'static str)>>> {
    let one = |values: &[&'static str]| -> Vec<Vec<(&'static str, &'static str)>> {
        let name: &'static str = Box::leak(option.to_string().into_boxed_str());
        values.iter().map(|v| vec![(name, *v)]).collect()
    };
    Some(match option {
        "tls-port" => one(&["{free}", "0", "-5", "{orig}"]),
        "tls-cert-file" => {
            // Each step that may diverge on purpose is followed by one that sets both alike.
            let mut s = one(&["{missing}", "{certs}/server2.crt", "{certs}/expired.crt"]);
            s.push(vec![("tls-cert-file", "{orig}"), ("tls-key-file", "{certs}/server.key")]);
            s.push(vec![("tls-cert-file", "{certs}/server2.crt"), ("tls-key-file", "{certs}/server2.key")]);
            s.push(vec![("tls-cert-file", "{orig}"), ("tls-key-file", "{certs}/server.key")]);
            s
        }
        "tls-key-file" => one(&["{missing}", "{certs}/server2.key", "{certs}/server-enc.key", "{orig}"]),
        "tls-key-file-pass" => {
            let mut s = one(&["s3cret"]);
            s.push(vec![("tls-key-file", "{certs}/server-enc.key"), ("tls-key-file-pass", "s3cret")]);
            s.push(vec![("tls-key-file", "{certs}/server-enc.key"), ("tls-key-file-pass", "wrong")]);
            s.push(vec![("tls-key-file", "{certs}/server.key"), ("tls-key-file-pass", "{orig}")]);
            s
        }
        "tls-client-cert-file" => one(&["{certs}/client.crt", "{missing}", "{orig}"]),
        "tls-client-key-file" => {
            let mut s = one(&["{certs}/client.key", "{missing}"]);
            s.push(vec![("tls-client-cert-file", "{certs}/client.crt"), ("tls-client-key-file", "{certs}/client.key")]);
            s.push(vec![("tls-client-cert-file", "{certs}/client.crt"), ("tls-client-key-file", "{certs}/server.key")]);
            s.push(vec![("tls-client-cert-file", ""), ("tls-client-key-file", "{orig}")]);
            s
        }
        "tls-client-key-file-pass" => one(&["s3cret", "{orig}"]),
        "tls-dh-params-file" => one(&["{certs}/dh.pem", "{missing}", "{certs}/ca.crt", "{orig}"]),
        "tls-ca-cert-file" => one(&["{certs}/other-ca.crt", "{missing}", "{orig}"]),
        "tls-ca-cert-dir" => one(&["{cadir}", "{missing}", "{orig}"]),
        "tls-protocols" => one(&["TLSv1.2", "TLSv1.3", "TLSv1.2 TLSv1.3", "SSLv9", "{orig}"]),
        "tls-ciphers" => one(&["HIGH", "NO-SUCH-CIPHER", "{orig}"]),
        "tls-ciphersuites" => one(&["TLS_AES_256_GCM_SHA384", "TLS_NO_SUCH_SUITE", "{orig}"]),
        "tls-prefer-server-ciphers" => one(&["yes", "maybe", "{orig}"]),
        "tls-session-caching" => one(&["no", "maybe", "{orig}"]),
        "tls-session-cache-size" => one(&["100", "0", "-1", "many", "{orig}"]),
        "tls-session-cache-timeout" => one(&["60", "-1", "long", "{orig}"]),
        "tls-auth-clients" => one(&["no", "optional", "maybe", "yes", "no", "{orig}"]),
        "tls-replication" => one(&["yes", "maybe", "no", "{orig}"]),
        "tls-cluster" => one(&["yes", "maybe", "no", "{orig}"]),
        _ => return None,
    })
}

/// The options a replica's link to its primary uses (the identity it presents, the CA it
/// verifies the primary with, the protocols, TLS itself): after an accepted change of one
/// of them, the link is made again and checked. (Each check takes seconds: the key, pass,
/// CA-directory and cipher options, which take the same paths, are left to the client
/// checks.)
const REPLICATION_LINK: &[&str] =
    &["tls-replication", "tls-cert-file", "tls-client-cert-file", "tls-client-key-file", "tls-ca-cert-file", "tls-protocols"];

/// The options a cluster node's bus links use.
const CLUSTER_LINK: &[&str] = &["tls-cluster", "tls-cert-file", "tls-client-cert-file", "tls-ca-cert-file", "tls-protocols"];

/// What else a side's server is, for its outgoing links.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Alone,
    /// A replica, over TLS, of a primary of its own build.
    Replica,
    /// A cluster node with one peer of its own build, the bus over TLS.
    ClusterNode,
}

/// A server of one build with a config file (for CONFIG REWRITE), a plain admin port, and
/// a client that connected with a certificate before any change; and the server at the
/// other end of its link, if its role has one.
struct Side {
    build: Build,
    server: ServerProcess,
    admin: u16,
    tls_port: u16,
    conf: PathBuf,
    held: Held,
    role: Role,
    peer: Option<ServerProcess>,
    /// The cluster peer's admin port and node id.
    cluster_peer: Option<(u16, String)>,
}

impl Side {
    fn start(build: Build, with_ca: bool) -> Side {
        Side::start_as(build, with_ca, Role::Alone)
    }

    fn start_as(build: Build, with_ca: bool, role: Role) -> Side {
        let tls_port = free_port();
        let admin = free_port();
        let conf = scratch_dir().join("server.conf");
        std::fs::write(&conf, "# conntls runtime-config test\n").unwrap();
        let mut args = vec![conf.to_string_lossy().into_owned()];
        if let Some(module) = build.module() {
            args.extend(["--loadmodule".to_string(), module.to_string_lossy().into_owned()]);
        }
        args.extend(tls_server_args(tls_port));
        args.extend(["--port".to_string(), admin.to_string()]);
        if !with_ca {
            args.extend(["--tls-ca-cert-file", "", "--tls-auth-clients", "no"].map(String::from));
        }
        let cluster = |args: &mut Vec<String>| {
            args.extend(["--cluster-enabled", "yes", "--tls-cluster", "yes", "--cluster-config-file", "nodes.conf"].map(String::from));
            args.extend(["--cluster-port".to_string(), free_port().to_string()]);
        };
        let mut peer = None;
        let mut cluster_peer = None;
        match role {
            Role::Alone => {}
            Role::Replica => {
                let primary = build.start_with(false, &["--repl-diskless-sync-delay", "0"]);
                args.extend(["--replicaof".to_string(), format!("127.0.0.1 {}", primary.port)]);
                args.extend(["--tls-replication", "yes"].map(String::from));
                peer = Some(primary);
            }
            Role::ClusterNode => {
                let (peer_tls, peer_admin) = (free_port(), free_port());
                let mut peer_args = tls_server_args(peer_tls);
                peer_args.extend(["--port".to_string(), peer_admin.to_string()]);
                cluster(&mut peer_args);
                peer = Some(ServerProcess::start(&build.binary("server"), peer_tls, &peer_args, false));
                cluster(&mut args);
                cluster_peer = Some((peer_admin, admin_command(peer_admin, &["CLUSTER", "MYID"])));
            }
        }
        let server = ServerProcess::start(&build.binary("server"), tls_port, &args, false);
        let held = Held::connect(tls_port);
        let side = Side { build, server, admin, tls_port, conf, held, role, peer, cluster_peer };
        if let Some((peer_admin, _)) = &side.cluster_peer {
            let bus = admin_command(*peer_admin, &["CONFIG", "GET", "cluster-port"]);
            let bus = bus.lines().nth(1).unwrap_or("").to_string();
            let peer_port = side.peer.as_ref().map(|p| p.port.to_string()).unwrap_or_default();
            assert_eq!(side.admin(&["CLUSTER", "MEET", "127.0.0.1", &peer_port, &bus]), "OK");
        }
        if role != Role::Alone {
            assert!(side.link_up(), "{build}: the link did not come up at start");
        }
        side
    }

    /// Whether the side's link (to its primary, or to its cluster peer) is up.
    fn link_up(&self) -> bool {
        match &self.cluster_peer {
            Some((_, id)) => cluster_link_up(self.admin, id, 0),
            None => link_up(self.admin),
        }
    }

    /// Drops the side's link, so that the next one is made with the settings now in force;
    /// the server's clock (ms) right after.
    fn drop_link(&self) -> u64 {
        match &self.cluster_peer {
            Some((_, id)) => self.admin(&["DEBUG", "CLUSTERLINK", "KILL", "ALL", id]),
            None => self.admin(&["CLIENT", "KILL", "TYPE", "master"]),
        };
        server_ms(self.admin)
    }

    /// The options whose changes the side's link is checked after.
    fn link_options(&self) -> &'static [&'static str] {
        match self.role {
            Role::Alone => &[],
            Role::Replica => REPLICATION_LINK,
            Role::ClusterNode => CLUSTER_LINK,
        }
    }

    fn admin(&self, args: &[&str]) -> String {
        admin_command(self.admin, args)
    }

    fn get(&self, option: &str) -> String {
        let reply = self.admin(&["CONFIG", "GET", option]);
        reply.lines().nth(1).unwrap_or("").to_string()
    }

    /// Whether a new TLS client (with the test client certificate or without one) gets PONG.
    fn connects(&self, with_cert: bool) -> bool {
        let c = certs();
        let mut cmd = Command::new("timeout");
        cmd.args(["10", "redis-cli", "-h", "127.0.0.1", "-p", &self.tls_port.to_string(), "--tls", "--cacert"]).arg(c.join("ca.crt"));
        if with_cert {
            cmd.arg("--cert").arg(c.join("client.crt")).arg("--key").arg(c.join("client.key"));
        }
        let out = cmd.arg("PING").output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim() == "PONG"
    }

    /// What an operator sees of the server after a step.
    fn observe(&mut self, options: &[&str]) -> String {
        let values: Vec<String> = options.iter().map(|o| format!("{o}={}", self.get(o))).collect();
        format!(
            "{}; new client without cert: {}; with cert: {}; client from before: {}",
            values.join(" "),
            self.connects(false),
            self.connects(true),
            self.held.ping()
        )
    }

    /// CONFIG REWRITE's file, without what differs by nature between the two servers, its
    /// lines sorted (the server writes the options it adds in its hash table's order).
    fn rewritten(&self) -> String {
        let reply = self.admin(&["CONFIG", "REWRITE"]);
        let text = std::fs::read_to_string(&self.conf).unwrap_or_default();
        let mut kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                !["port ", "tls-port ", "dir ", "logfile ", "loadmodule ", "replicaof ", "cluster-port "].iter().any(|p| l.starts_with(p))
            })
            .collect();
        kept.sort_unstable();
        format!("{reply}\n{}", kept.join("\n"))
    }
}

/// A command on a server's plain admin port.
fn admin_command(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the replica at admin `port` has its link to the primary up within 8 s (it
/// retries once a second).
fn link_up(port: u16) -> bool {
    for _ in 0..40 {
        if admin_command(port, &["INFO", "replication"]).contains("master_link_status:up") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The server's clock in ms (TIME).
fn server_ms(port: u16) -> u64 {
    let time = admin_command(port, &["TIME"]);
    let mut parts = time.lines().map(|l| l.trim().parse::<u64>().unwrap_or(0));
    let (secs, micros) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    secs * 1000 + micros / 1000
}

/// Whether the cluster node at admin `port` has, within 8 s, a bus link to node `id` that
/// carried a PONG received at or after `since_ms` (its clock): a link made and working.
/// ("connected" alone is not enough: the node's cron remakes a missing link ten times a
/// second, and the link counts as connected while its handshake is still running.)
fn cluster_link_up(port: u16, id: &str, since_ms: u64) -> bool {
    for _ in 0..40 {
        let nodes = admin_command(port, &["CLUSTER", "NODES"]);
        let working = |l: &str| {
            let fields: Vec<&str> = l.split(' ').collect();
            fields.len() > 7 && fields[7] == "connected" && fields[5].parse::<u64>().is_ok_and(|pong| pong >= since_ms)
        };
        if nodes.lines().any(|l| l.starts_with(id) && working(l)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A client connected over TLS with a certificate, kept open across the changes
/// (openssl s_client: one TLS connection, PING written and +PONG read per check).
struct Held {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Held {
    fn connect(port: u16) -> Held {
        let c = certs();
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-connect", &format!("127.0.0.1:{port}")])
            .arg("-CAfile")
            .arg(c.join("ca.crt"))
            .arg("-cert")
            .arg(c.join("client.crt"))
            .arg("-key")
            .arg(c.join("client.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut held = Held { child, stdin, lines };
        assert!(held.ping(), "the long-lived client did not get PONG at start");
        held
    }

    fn ping(&mut self) -> bool {
        if self.stdin.write_all(b"PING\r\n").and_then(|()| self.stdin.flush()).is_err() {
            return false;
        }
        matches!(self.lines.recv_timeout(Duration::from_secs(10)), Ok(line) if line.trim() == "+PONG")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A step's pairs for one side, placeholders filled in.
fn fill(step: &[(&str, &str)], orig: &dyn Fn(&str) -> String, free: u16) -> Vec<(String, String)> {
    let certs = certs().to_string_lossy().into_owned();
    let cadir = ca_dir().to_string_lossy().into_owned();
    step.iter()
        .map(|(o, v)| {
            let value = match *v {
                "{orig}" => orig(o),
                "{free}" => free.to_string(),
                "{missing}" => format!("{certs}/no-such-file"),
                "{cadir}" => cadir.clone(),
                _ => v.replace("{certs}", &certs),
            };
            (o.to_string(), value)
        })
        .collect()
}

/// A directory holding only the test CA's certificate.
fn ca_dir() -> PathBuf {
    let dir = tmp_dir().join("runtime-config-ca-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(certs().join("ca.crt"), dir.join("ca.crt")).unwrap();
    dir
}

/// Runs every option's steps on a stock and a conntls server started alike; returns the
/// differences that DELIBERATE does not list (and prints the ones it does).
fn compare(stock: Build, conntls: Build, with_ca: bool, role: Role, only: &[&str]) -> Vec<String> {
    let mut sides = [Side::start_as(stock, with_ca, role), Side::start_as(conntls, with_ca, role)];
    let listed = sides[0].admin(&["CONFIG", "GET", "tls-*"]);
    let mut options: Vec<String> = listed.lines().step_by(2).map(str::to_string).collect();
    options.sort();
    assert!(options.len() >= 20, "{stock}: CONFIG GET tls-* listed {options:?}");
    let start_values: Vec<Vec<(String, String)>> =
        sides.iter().map(|s| options.iter().map(|o| (o.clone(), s.get(o))).collect()).collect();
    let mut differences = Vec::new();
    let certs_dir = certs().to_string_lossy().into_owned();
    for option in options.iter().filter(|o| only.is_empty() || only.contains(&o.as_str())) {
        let Some(steps) = steps(option) else {
            differences.push(format!("{option}: stock accepts it at runtime and this test has no steps for it"));
            continue;
        };
        for step in &steps {
            let mut seen = Vec::new();
            for (i, side) in sides.iter_mut().enumerate() {
                let orig = |o: &str| start_values[i].iter().find(|(n, _)| n == o).map(|(_, v)| v.clone()).unwrap_or_default();
                let pairs = fill(step, &orig, free_port());
                let mut args = vec!["CONFIG".to_string(), "SET".to_string()];
                for (o, v) in &pairs {
                    args.extend([o.clone(), v.clone()]);
                }
                let reply = side.admin(&args.iter().map(String::as_str).collect::<Vec<_>>());
                if let Some((_, port)) = pairs.iter().find(|(o, _)| o == "tls-port") {
                    if reply == "OK" {
                        side.tls_port = port.parse().unwrap_or(0);
                    }
                }
                let names: Vec<&str> = pairs.iter().map(|(o, _)| o.as_str()).collect();
                let mut observed = side.observe(&names);
                // The port's number differs by nature: what counts is that it took.
                if let Some((_, port)) = pairs.iter().find(|(o, _)| o == "tls-port") {
                    observed = observed.replace(&format!("tls-port={port}"), "tls-port=<as set>");
                }
                seen.push((reply, observed));
            }
            // The link made again after an accepted change of an option it uses, on both
            // at once: each is up within the bound, or down on both.
            if sides[0].link_options().contains(&option.as_str()) && seen.iter().any(|(reply, _)| reply == "OK") {
                let dropped: Vec<u64> = sides.iter().map(Side::drop_link).collect();
                let up: Vec<bool> = std::thread::scope(|s| {
                    let waits: Vec<_> = sides
                        .iter()
                        .zip(dropped)
                        .map(|(side, since)| (side.admin, side.cluster_peer.as_ref().map(|(_, id)| id.clone()), since))
                        .map(|(port, peer, since)| {
                            s.spawn(move || match peer {
                                Some(id) => cluster_link_up(port, &id, since),
                                None => link_up(port),
                            })
                        })
                        .collect();
                    waits.into_iter().map(|w| w.join().unwrap()).collect()
                });
                let what = if sides[0].cluster_peer.is_some() { "cluster bus link" } else { "replication link" };
                for (i, up) in up.into_iter().enumerate() {
                    seen[i].1.push_str(&format!("; {what}: {}", if up { "up" } else { "down" }));
                }
            }
            let shown: Vec<String> = step.iter().map(|(o, v)| format!("{o} {v}")).collect();
            let shown = shown.join(" ").replace(&certs_dir, "{certs}");
            if seen[0] != seen[1] {
                let what = format!(
                    "{}: CONFIG SET {shown}\n  {stock}: {} | {}\n  {conntls}: {} | {}",
                    conntls.server, seen[0].0, seen[0].1, seen[1].0, seen[1].1
                );
                let listed = DELIBERATE.iter().find(|(server, o, v, _)| {
                    conntls.server.starts_with(server) && o == option && step.iter().any(|(_, value)| value.contains(v))
                });
                match listed {
                    Some((_, _, _, why)) => println!("deliberate difference: {what}\n  why: {why}"),
                    None => differences.push(what),
                }
            } else {
                println!("{conntls} as {stock}: CONFIG SET {shown}: {} | {}", seen[1].0, seen[1].1);
            }
        }
        let rewrites = [sides[0].rewritten(), sides[1].rewritten()];
        if rewrites[0] != rewrites[1] {
            differences.push(format!("{option}: CONFIG REWRITE\n--- {stock}:\n{}\n--- {conntls}:\n{}", rewrites[0], rewrites[1]));
        }
    }
    for side in sides {
        let logs = side.server.stop();
        assert!(!logs.contains("AddressSanitizer"), "{}:\n{logs}", side.build);
        if let Some(peer) = side.peer {
            let logs = peer.stop();
            assert!(!logs.contains("AddressSanitizer"), "{} (its peer):\n{logs}", side.build);
        }
    }
    differences
}

fn pairs() -> Vec<(Build, Build)> {
    let mut pairs = Vec::new();
    for server in ["redis-7.0.15", "redis-8.0.2", "valkey-8.1.1"] {
        pairs.push((Build::new(server, "stock"), Build::new(server, "conntls")));
    }
    pairs.push((Build::new("valkey-8.1.1", "module"), Build::new("valkey-8.1.1", "conntls-module")));
    pairs
}

/// Every tls-* option, every step, on every server built on conntls against its stock.
#[test]
fn every_tls_option_at_runtime_as_on_stock() {
    let _serial = one_at_a_time();
    let mut differences = Vec::new();
    for (stock, conntls) in pairs() {
        // The glue's outgoing path is one for all servers and the module: its links are
        // checked on Valkey 8.1.1 built in.
        let role = if stock == Build::new("valkey-8.1.1", "stock") { Role::Replica } else { Role::Alone };
        differences.extend(compare(stock, conntls, true, role, &[]));
    }
    assert!(differences.is_empty(), "differences from stock:\n{}", differences.join("\n"));
}

/// The cluster bus after each change of an option its links use: a node and its peer
/// (Valkey 8.1.1 built in), the bus over TLS, the link dropped after each accepted change.
#[test]
fn cluster_bus_after_each_change_as_on_stock() {
    let _serial = one_at_a_time();
    let (stock, conntls) = (Build::new("valkey-8.1.1", "stock"), Build::new("valkey-8.1.1", "conntls"));
    let differences = compare(stock, conntls, true, Role::ClusterNode, CLUSTER_LINK);
    assert!(differences.is_empty(), "differences from stock:\n{}", differences.join("\n"));
}

/// The outage an operator found: a server started with tls-auth-clients no and no CA,
/// then `CONFIG SET tls-auth-clients optional` (answered OK): stock serves clients
/// without a certificate, conntls reset every one of them (and rebuilt a context that
/// could not be built on every accept). Now as stock, on every server; and stock still
/// serves them (the trigger still applies). With `yes` and no CA, which nobody can
/// connect to on either, conntls tries the context once.
#[test]
fn auth_clients_changed_without_a_ca_as_on_stock() {
    let _serial = one_at_a_time();
    let mut differences = Vec::new();
    for (stock, conntls) in pairs() {
        differences.extend(compare(stock, conntls, false, Role::Alone, &["tls-auth-clients"]));
        let side = Side::start(stock, false);
        assert_eq!(side.admin(&["CONFIG", "SET", "tls-auth-clients", "optional"]), "OK");
        assert!(side.connects(false), "{stock}: a client without a certificate no longer connects after the change");
        drop(side);
        // `yes` with no CA cannot be served (stock fails every handshake): conntls tries to
        // build that context once, not again on every accept (each try reads every file on
        // the main thread and logs), and says why to each client it refuses.
        let side = Side::start(conntls, false);
        assert_eq!(side.admin(&["CONFIG", "SET", "tls-auth-clients", "yes"]), "OK");
        for _ in 0..5 {
            assert!(!side.connects(false) && !side.connects(true), "{conntls}: a client connected with tls-auth-clients yes and no CA");
        }
        let logs = side.server.logs();
        let builds = logs.matches("Failed to configure TLS").count();
        assert_eq!(builds, 1, "{conntls}: the context for tls-auth-clients yes was tried {builds} times:\n{logs}");
        assert!(logs.contains("no CA is set"), "{conntls}:\n{logs}");
    }
    assert!(differences.is_empty(), "differences from stock:\n{}", differences.join("\n"));
}
