//! No deprecated OpenSSL API, on whichever OpenSSL the library was built against: every
//! OpenSSL function the library's own code calls must be declared by that OpenSSL's
//! headers with the deprecated API compiled out, and so must everything the C tests and
//! benchmarks use. (OpenSSL 4.0 removes much of what 3.0 deprecated.)
//! CONNTLS_OPENSSL_INCLUDE names the headers of the OpenSSL under test (the matrix);
//! the system's otherwise.
mod common;
use common::*;

use std::process::Command;

/// Each build twice: at API level 3.0 with the deprecated API compiled out, and at the
/// headers' own level (OpenSSL 4.0 deprecates more, which level 3.0 does not flag), where
/// every deprecation warning is an error.
const NO_DEPRECATED: [&[&str]; 2] = [
    &["-DOPENSSL_API_COMPAT=30000", "-DOPENSSL_NO_DEPRECATED", "-Werror"],
    &["-DOPENSSL_NO_DEPRECATED", "-Werror", "-Werror=deprecated-declarations"],
];

fn include_args() -> Vec<String> {
    std::env::var("CONNTLS_OPENSSL_INCLUDE").map(|dir| vec![format!("-I{dir}")]).unwrap_or_default()
}

/// The OpenSSL functions the library calls: what libconntls.so.0 imports from libssl and
/// libcrypto, and (for a build with OpenSSL linked in, which imports nothing) what the
/// library's own objects in libconntls.a call. (openssl-sys's objects are not read: they
/// hold wrappers for all of OpenSSL's API, which the shared library's link drops unless
/// conntls uses them, and then they are among its imports.)
fn openssl_calls() -> Vec<String> {
    let nm = |args: &[&str], file: &str| {
        let out = Command::new("nm").args(args).arg(lib_dir().join(file)).output().expect("run nm");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let imports = nm(&["-D", "--undefined-only"], "libconntls.so.0");
    let imported = imports.lines().filter_map(|l| l.split_whitespace().last()).filter_map(|s| s.split_once("@OPENSSL_")).map(|(name, _)| name.to_string());
    let objects = nm(&["--undefined-only", "-A"], "libconntls.a");
    let prefixes = ["SSL_", "TLS_", "X509", "BIO_", "BN_", "ERR_", "EVP_", "PEM_", "RAND_", "OBJ_", "ASN1_", "CRYPTO_", "OPENSSL_", "DH_", "OSSL_"];
    let called = objects
        .lines()
        .filter_map(|line| {
            let (member, symbol) = line.split_once(": ")?;
            member.rsplit(':').next()?.starts_with("conntls-").then(|| symbol.split_whitespace().last().map(String::from))?
        })
        .filter(|sym| prefixes.iter().any(|p| sym.starts_with(p)));
    let mut calls: Vec<String> = imported.chain(called).collect();
    calls.sort();
    calls.dedup();
    calls
}

#[test]
fn library_calls_no_deprecated_openssl() {
    let calls = openssl_calls();
    assert!(calls.len() > 50 && calls.iter().any(|c| c == "SSL_write"), "found only {calls:?}");
    let mut source = String::new();
    for header in ["ssl", "err", "pem", "x509", "x509v3", "evp", "rand", "bio", "bn", "objects", "asn1", "crypto"] {
        source.push_str(&format!("#include <openssl/{header}.h>\n"));
    }
    source.push_str("void *conntls_uses[] = {\n");
    for call in &calls {
        source.push_str(&format!("    (void *)&{call},\n"));
    }
    source.push_str("};\n");
    let dir = scratch_dir();
    let file = dir.join("uses.c");
    std::fs::write(&file, source).unwrap();
    for flags in NO_DEPRECATED {
        let out = Command::new("cc")
            .args(["-std=c11", "-c", "-o"])
            .arg(dir.join("uses.o"))
            .args(flags)
            .args(include_args())
            .arg(&file)
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "the library calls OpenSSL API that is deprecated (or absent) with {flags:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn c_programs_build_without_deprecated_openssl() {
    for (source, flags) in ["c_tests/writev_stress.c", "benches/writev_bench.c", "benches/handshake_bench.c", "benches/idle_memory.c"]
        .into_iter()
        .flat_map(|source| NO_DEPRECATED.map(|flags| (source, flags)))
    {
        let out = Command::new("cc")
            .args(["-std=c11", "-D_GNU_SOURCE", "-fsyntax-only", "-Wall", "-Wextra"])
            .args(flags)
            .args(include_args())
            .arg("-I")
            .arg(root().join("include"))
            .arg("-I")
            .arg(root().join("c_tests"))
            .arg(root().join(source))
            .output()
            .expect("run cc");
        assert!(out.status.success(), "{source} uses deprecated OpenSSL API ({flags:?}):\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The library runs on the OpenSSL under test: CONNTLS_OPENSSL_LINE (the matrix: "3.5",
/// "4.0"), else the system's, as its `openssl` command reports it.
#[test]
fn runs_on_the_openssl_under_test() {
    let out = run_c("version", Link::Shared, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let running = text.lines().nth(1).expect("conn_tls_openssl_version line").to_string();
    println!("conntls {} on {running}", text.lines().next().unwrap_or(""));
    let expected = match std::env::var("CONNTLS_OPENSSL_LINE") {
        Ok(line) => format!("OpenSSL {line}."),
        Err(_) => {
            let cli = Command::new("openssl").arg("version").output().expect("run openssl version");
            let cli = String::from_utf8_lossy(&cli.stdout).into_owned();
            cli.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        }
    };
    assert!(running.starts_with(&expected), "the library runs on '{running}', expected '{expected}'");
}
