//! C programs of c_tests/ built against the client libraries people link (hiredis 1.2.0,
//! libvalkey 0.5.0: scripts/clients.sh builds them from their registries' sources), each
//! with its own OpenSSL TLS and with conntls's transport (tests/clients.rs,
//! tests/deployments.rs).
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::{lib_dir, root, tmp_dir};

/// target/clients, built once per test binary.
pub fn client_libraries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(root().join("scripts/clients.sh")).output().expect("run scripts/clients.sh");
            assert!(out.status.success(), "scripts/clients.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
            root().join("target/clients")
        })
        .clone()
}

/// c_tests/`source`.c built against `library` (hiredis or libvalkey) with its OpenSSL TLS
/// and the conntls transport; built once per test binary.
pub fn client_program(source: &str, library: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = tmp_dir().join(format!("{source}-{library}-{}", std::process::id()));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("{source}-{library}");
    if !built.contains(&name) {
        // hiredis's libevent adapter needs libevent (Debian's libevent-dev).
        let (define, tree, includes, archives, system) = match library {
            "hiredis" => ("CLIENT_HIREDIS", "hiredis-1.2.0", vec![""], ["libhiredis_conntls.a", "libhiredis_ssl.a", "libhiredis.a"], vec!["-levent"]),
            _ => ("CLIENT_VALKEY", "libvalkey-0.5.0", vec!["include/valkey"], ["libvalkey_conntls.a", "libvalkey_tls.a", "libvalkey.a"], vec![]),
        };
        let tree = client_libraries().join(tree);
        let mut cc = Command::new("cc");
        cc.args(["-std=c99", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
            .arg(format!("-D{define}"))
            .arg(format!("-I{}", root().join("include").display()));
        for dir in includes {
            cc.arg(format!("-I{}", tree.join(dir).display()));
        }
        cc.arg(root().join(format!("c_tests/{source}.c"))).arg("-o").arg(&exe);
        for a in archives {
            cc.arg(tree.join(a));
        }
        let lib = lib_dir();
        cc.arg(format!("-L{}", lib.display())).arg(format!("-Wl,-rpath,{}", lib.display())).args(["-lconntls", "-lssl", "-lcrypto"]).args(system);
        let out = cc.output().expect("run cc");
        assert!(out.status.success(), "cc {source}.c ({library}): {}", String::from_utf8_lossy(&out.stderr));
        built.push(name);
    }
    exe
}
