//! Redis as Debian ships it, 7.0.15 (Debian 12) and 8.0.2 (Debian 13), built from Debian's
//! source packages stock and with contrib/redis/tls.c (scripts/servers.sh, with
//! AddressSanitizer), under the triggers of the defects conntls exists for. Each trigger
//! is also run on stock, and where stock fails it is asserted to fail, so that a pass on
//! conntls means something.
mod common;
use common::servers::*;

const SERVERS: [&str; 2] = ["redis-7.0.15", "redis-8.0.2"];

fn stock(server: &'static str) -> Build {
    Build::new(server, "stock")
}

fn conntls(server: &'static str) -> Build {
    Build::new(server, "conntls")
}

#[test]
fn bad_length_trigger_drops_stock_connections_and_none_on_conntls() {
    let _serial = one_at_a_time();
    for server in SERVERS {
        let o = trigger(stock(server), true, |_| BAD_LENGTH_TRIGGER.map(String::from).to_vec());
        assert_eq!(o.code, 1, "{server} stock: the trigger no longer drops connections:\n{}\n{}", o.out, o.logs);
        assert!(o.logs.contains("SSL routines::bad length"), "{server} stock dropped for another reason:\n{}\n{}", o.out, o.logs);
        println!("{server} stock: {}", o.out.lines().filter(|l| l.contains("dropped")).count());

        let o = trigger(conntls(server), true, |_| BAD_LENGTH_TRIGGER.map(String::from).to_vec());
        o.assert_held(conntls(server), "ok, 40 replies");
        assert_eq!(o.out.lines().filter(|l| l.ends_with("ok, 40 replies")).count(), 4, "{}", o.out);
    }
}

/// SIXTEEN_MIB_TRIGGER through a 4 KiB send buffer.
#[test]
fn sixteen_mib_replies_to_a_slow_reader() {
    let _serial = one_at_a_time();
    for server in SERVERS {
        // Redis gathers into its stack buffer only below NET_MAX_WRITES_PER_EVENT (64 KiB),
        // so stock is not expected to crash here as Valkey 8.1 does (valkey #4307): its
        // outcome is recorded, not asserted.
        let o = trigger(stock(server), true, |_| SIXTEEN_MIB_TRIGGER.map(String::from).to_vec());
        println!("{server} stock, 16 MiB replies: peer exit {}, server alive: {}\n{}", o.code, o.alive, o.out);

        let o = trigger(conntls(server), true, |_| SIXTEEN_MIB_TRIGGER.map(String::from).to_vec());
        o.assert_held(conntls(server), "ok, 4 replies");
    }
}

/// Two clients kill each other with CLIENT KILL waiting decrypted behind a 40,000-byte bulk
/// that the server reads exactly to its end; both are written while the server is stopped
/// (SIGSTOP/SIGCONT by resp_tls_peer), so both reach the end of the bulk in one event-loop
/// turn and sit on the TLS pending list together, however fast the machine. Stock 8.0.2
/// walks that list with an iterator that caches the next node, which the first kill frees
/// (the defect of Redis 6.2.24's fix and Valkey's CVE-2026-56684); stock 7.0.15 carries
/// Debian's CVE-2026-81934 patch, which pops from the head. contrib/common/conntls_glue.h
/// pops from the head: with an iterator walk instead, this test fails on both conntls
/// builds (checked once).
#[test]
fn pending_list_kill_trigger() {
    let _serial = one_at_a_time();
    let mut server = stock("redis-8.0.2").start(false);
    let (code, out) = run_peer(server.port, &killpair(&server));
    assert_eq!(code, 1, "redis 8.0.2 stock survived the pending-list trigger:\n{out}");
    assert!(server.ended(), "redis 8.0.2 stock stopped answering but did not end:\n{out}");
    let logs = server.stop();
    assert!(logs.contains("heap-use-after-free") && logs.contains("tlsProcessPendingData"), "{logs}");

    let o = trigger(stock("redis-7.0.15"), false, killpair);
    o.assert_held(stock("redis-7.0.15"), "round 20: server alive");

    for server in SERVERS {
        trigger(conntls(server), false, killpair).assert_held(conntls(server), "round 20: server alive");
    }
}

/// The tree's own redis-cli and redis-benchmark (their TLS is hiredis's, on OpenSSL)
/// against each conntls build: a 1 MiB value back byte for byte, a benchmark without errors.
#[test]
fn redis_cli_and_benchmark_against_conntls() {
    let _serial = one_at_a_time();
    for server in SERVERS {
        let running = conntls(server).start(false);
        cli_and_benchmark(conntls(server), &running, 1 << 20);
        let logs = running.stop();
        assert!(!logs.contains("AddressSanitizer"), "{logs}");
    }
}

/// Redis's own tests with --tls, on the network path: unit/tls, pipelining
/// (unit/protocol), unit/networking, a replica over TLS under blocking commands
/// (integration/block-repl) and replication with commands running meanwhile
/// (integration/replication-4). Each file must pass on conntls, after one rerun at most;
/// a file that fails twice is run on stock, and fails the test only where it passes there
/// (run_own_tests).
#[test]
fn redis_own_tls_tests_pass_as_on_stock() {
    let _serial = one_at_a_time();
    let files = ["unit/tls", "unit/protocol", "unit/networking", "integration/block-repl", "integration/replication-4"];
    for server in SERVERS {
        run_own_tests(conntls(server), &files, &[]);
    }
}
