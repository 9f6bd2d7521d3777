//! A TLS cluster of one server build on loopback (tests/deployments.rs): primaries with
//! replicas, every link TLS (clients, `tls-cluster`, `tls-replication`), mutual TLS with
//! the test certificates, made with the stock tree's `--cluster create` as an operator
//! makes one. Every node is a ServerProcess: stopped by its PID when the cluster drops.
use std::process::Output;
use std::time::{Duration, Instant};

use super::servers::{tls_command, Build, ServerProcess};

pub struct Cluster {
    pub build: Build,
    pub nodes: Vec<ServerProcess>,
}

/// Options every node gets: cluster mode with TLS on the bus and the replication links, a
/// node timeout short enough for a failover inside a test.
pub const NODE_OPTIONS: [&str; 8] =
    ["--cluster-enabled", "yes", "--tls-cluster", "yes", "--tls-replication", "yes", "--cluster-node-timeout", "3000"];

/// A free loopback port whose cluster-bus port (port + 10000) is free too.
fn node_port() -> u16 {
    use std::net::TcpListener;
    for _ in 0..1000 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else { continue };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        if (1024..55535).contains(&port) && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port with a free cluster-bus port");
}

impl Cluster {
    /// `primaries` primaries with `replicas` replicas each, with `options` on every node;
    /// returns once every node says cluster_state:ok and every replica's link is up.
    pub fn start(build: Build, primaries: usize, replicas: usize, options: &[&str]) -> Cluster {
        let all: Vec<&str> = NODE_OPTIONS.iter().chain(options).copied().collect();
        let nodes: Vec<ServerProcess> =
            (0..primaries * (1 + replicas)).map(|_| build.start_on(node_port(), false, &all)).collect();
        let cluster = Cluster { build, nodes };
        let addresses: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = cluster
            .cli(0)
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("run the cli");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("All 16384 slots covered"), "{build}: cluster create: {text}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cluster.settled() {
            assert!(Instant::now() < deadline, "{build}: the cluster did not settle in 120 s:\n{}", cluster.summary());
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    /// The stock tree's cli for node `i` (TLS, the test client certificate).
    pub fn cli(&self, i: usize) -> std::process::Command {
        tls_command(&self.build.stock().binary("cli"), self.nodes[i].port)
    }

    /// One command on node `i`: its output (empty when the node does not answer).
    pub fn ask(&self, i: usize, args: &[&str]) -> String {
        let out: Option<Output> = self.cli(i).args(args).output().ok();
        out.map(|o| String::from_utf8_lossy(&o.stdout).replace('\r', "")).unwrap_or_default()
    }

    fn settled(&self) -> bool {
        (0..self.nodes.len()).all(|i| {
            let replication = self.ask(i, &["info", "replication"]);
            self.ask(i, &["cluster", "info"]).contains("cluster_state:ok")
                && (replication.contains("role:master") || replication.contains("master_link_status:up"))
        })
    }

    /// The nodes (indexes) whose role is `role` (master or slave, as INFO says).
    pub fn with_role(&self, role: &str) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.ask(i, &["info", "replication"]).contains(&format!("role:{role}"))).collect()
    }

    fn summary(&self) -> String {
        (0..self.nodes.len())
            .map(|i| format!("node {} ({}):\n{}\n", i, self.nodes[i].port, self.ask(i, &["cluster", "nodes"])))
            .collect()
    }

    /// Whether every node still runs.
    pub fn all_alive(&mut self) -> bool {
        self.nodes.iter_mut().all(|n| n.alive())
    }

    /// Stops every node; their logs (log file and stderr) one after the other.
    pub fn stop(self) -> String {
        self.nodes.into_iter().enumerate().map(|(i, n)| format!("=== node {i}\n{}", n.stop())).collect()
    }
}
