//! What a distro packager and a C user rely on: a current header, the soname, exactly the
//! conn_tls_* symbols exported, and an install tree that links through pkg-config.
mod common;
use common::*;

use std::process::Command;

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn header_is_current() {
    // Built by `make test` (cargo build --workspace) with the pinned cbindgen.
    let tool = lib_dir().join("gen-header");
    assert!(tool.exists(), "{} missing: run `cargo build --release --workspace` (make test does)", tool.display());
    stdout_of(Command::new(tool).arg("--check"));
}

#[test]
fn header_version_matches_the_crate() {
    let header = std::fs::read_to_string(root().join("include/conntls.h")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define CONN_TLS_VERSION \"{version}\"")));
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    assert!(header.contains(&format!("#define CONN_TLS_VERSION_MAJOR {major}\n")));
}

#[test]
fn soname_is_libconntls_so_0() {
    let dynamic = stdout_of(Command::new("readelf").arg("-d").arg(lib_dir().join("libconntls.so")));
    assert!(dynamic.contains("Library soname: [libconntls.so.0]"), "{dynamic}");
}

#[test]
fn exports_exactly_the_api() {
    let nm = stdout_of(Command::new("nm").args(["-D", "--defined-only"]).arg(lib_dir().join("libconntls.so")));
    let mut exported: Vec<&str> = nm.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    exported.sort();
    let expected = std::fs::read_to_string(root().join("tests/exported-symbols.txt")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(exported, expected, "exported symbols differ from tests/exported-symbols.txt");
    assert!(exported.iter().all(|s| s.starts_with("conn_tls_")));
    // Every exported function is declared in the header.
    let header = std::fs::read_to_string(root().join("include/conntls.h")).unwrap();
    for symbol in exported {
        assert!(header.contains(&format!(" {symbol}(")) || header.contains(&format!("*{symbol}(")), "{symbol} not in the header");
    }
}

fn make_install(args: &[String]) {
    let out = Command::new("make").arg("-C").arg(root()).arg("install").args(args).output().expect("make install");
    assert!(out.status.success(), "make install: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn installed_tree_links_through_pkg_config() {
    let prefix = scratch_dir().join("usr");
    make_install(&[format!("PREFIX={}", prefix.display())]);
    let lib = prefix.join("lib");
    assert_eq!(std::fs::read_link(lib.join("libconntls.so")).unwrap().to_str(), Some("libconntls.so.0"));
    assert_eq!(
        std::fs::read_link(lib.join("libconntls.so.0")).unwrap().to_str().map(String::from),
        Some(format!("libconntls.so.{}", env!("CARGO_PKG_VERSION")))
    );
    assert!(lib.join("libconntls.a").exists() && prefix.join("include/conntls.h").exists());

    let pkg = |args: &[&str]| {
        stdout_of(Command::new("pkg-config").env("PKG_CONFIG_PATH", lib.join("pkgconfig")).args(args).arg("conntls"))
    };
    assert_eq!(pkg(&["--modversion"]).trim(), env!("CARGO_PKG_VERSION"));
    let static_libs = pkg(&["--static", "--libs"]);
    assert!(static_libs.contains("-lssl") && static_libs.contains("-lcrypto"), "{static_libs}");

    // The session test, compiled against the installed header and library only.
    let exe = scratch_dir().join("session-installed");
    let flags = pkg(&["--cflags", "--libs"]);
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror"])
        .arg("-iquote")
        .arg(root().join("c_tests"))
        .arg(root().join("c_tests/session.c"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lcrypto", "-o"])
        .arg(&exe);
    stdout_of(&mut cc);
    let linked = stdout_of(Command::new("ldd").arg(&exe));
    assert!(linked.contains(&format!("{}/libconntls.so.0", lib.display())), "{linked}");
    run_ok(&mut Command::new(&exe));
}

#[test]
fn destdir_install_for_packagers() {
    let dest = scratch_dir();
    make_install(&["PREFIX=/usr".into(), "LIBDIR=/usr/lib/x86_64-linux-gnu".into(), format!("DESTDIR={}", dest.display())]);
    let lib = dest.join("usr/lib/x86_64-linux-gnu");
    for f in ["libconntls.so", "libconntls.so.0", "libconntls.a", "pkgconfig/conntls.pc"] {
        assert!(lib.join(f).exists(), "{f} missing");
    }
    let pc = std::fs::read_to_string(lib.join("pkgconfig/conntls.pc")).unwrap();
    assert!(pc.contains("prefix=/usr\n") && pc.contains("libdir=/usr/lib/x86_64-linux-gnu\n") && pc.contains("Requires.private: openssl"), "{pc}");
}

/// Packagers who build with cargo-c get the soname from the crate's major version
/// (`version_suffix_components = 1` in Cargo.toml): it must be the one build.rs and the
/// Makefile give. (CI has no cargo-c; README says how it was checked.)
#[test]
fn cargo_c_metadata_gives_the_same_soname() {
    let read = |f: &str| std::fs::read_to_string(root().join(f)).unwrap();
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    assert!(read("Cargo.toml").contains("\n[package.metadata.capi.library]\nversion_suffix_components = 1\n"));
    assert!(read("build.rs").contains(&format!("const ABI_VERSION: &str = \"{major}\";")));
    assert!(read("Makefile").contains(&format!("\nABI := {major}\n")));
}
