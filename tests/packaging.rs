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
    // Built by `make test` (make header-tool) with the pinned cbindgen, in its own workspace.
    let tool = root().join("tools/gen-header/target/release/gen-header");
    assert!(tool.exists(), "{} missing: run `make header-tool` (make test does)", tool.display());
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
    let dynamic = stdout_of(Command::new("readelf").arg("-d").arg(lib_dir().join("libconntls.so.0")));
    assert!(dynamic.contains("Library soname: [libconntls.so.0]"), "{dynamic}");
}

/// The exported functions, without their versions; and the version of each.
fn exports() -> Vec<(String, String)> {
    let nm = stdout_of(Command::new("nm").args(["-D", "--defined-only"]).arg(lib_dir().join("libconntls.so.0")));
    let mut exported: Vec<(String, String)> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|sym| sym.contains('@')) // the version node itself is listed, unversioned
        .map(|sym| {
            let (name, version) = sym.split_once('@').unwrap();
            (name.to_string(), version.trim_start_matches('@').to_string())
        })
        .collect();
    exported.sort();
    exported
}

fn expected_exports() -> Vec<String> {
    std::fs::read_to_string(root().join("tests/exported-symbols.txt")).unwrap().lines().map(String::from).collect()
}

#[test]
fn exports_exactly_the_api() {
    let exported: Vec<String> = exports().into_iter().map(|(name, _)| name).collect();
    assert_eq!(exported, expected_exports(), "exported symbols differ from tests/exported-symbols.txt");
    assert!(exported.iter().all(|s| s.starts_with("conn_tls_")));
    // Every exported function is declared in the header.
    let header = std::fs::read_to_string(root().join("include/conntls.h")).unwrap();
    for symbol in &exported {
        assert!(header.contains(&format!(" {symbol}(")) || header.contains(&format!("*{symbol}(")), "{symbol} not in the header");
    }
}

/// Every export carries a version node (not Base), the one conntls.map gives it, and the
/// map names exactly the exported functions.
#[test]
fn exports_are_versioned() {
    let map = std::fs::read_to_string(root().join("conntls.map")).unwrap();
    let mut listed: Vec<String> =
        map.lines().map(str::trim).filter(|l| l.starts_with("conn_tls_")).map(|l| l.trim_end_matches(';').to_string()).collect();
    listed.sort();
    assert_eq!(listed, expected_exports(), "conntls.map lists other functions than tests/exported-symbols.txt");
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let nodes = map_nodes(&map);
    assert!(nodes.values().all(|node| node == &format!("CONNTLS_{major}") || node.starts_with(&format!("CONNTLS_{major}."))));
    for (name, version) in exports() {
        assert_eq!(Some(&version), nodes.get(&name), "{name}: versioned {version}, conntls.map says {:?}", nodes.get(&name));
    }
    // The Debian symbols file says the same (dpkg-gensymbols checks it against the build).
    let symbols = std::fs::read_to_string(root().join("debian/libconntls0.symbols")).unwrap();
    let mut in_symbols: Vec<(String, String)> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.split_once('@'))
        .filter(|(name, _)| name.starts_with("conn_tls_"))
        .map(|(name, node)| (name.to_string(), node.to_string()))
        .collect();
    in_symbols.sort();
    let expected: Vec<(String, String)> = expected_exports().into_iter().map(|name| (name.clone(), nodes[&name].clone())).collect();
    assert_eq!(in_symbols, expected, "debian/libconntls0.symbols differs from the exports and their nodes");
    // objdump's view, as dpkg-gensymbols reads it.
    let dynsym = stdout_of(Command::new("objdump").arg("-T").arg(lib_dir().join("libconntls.so.0")));
    for line in dynsym.lines().filter(|l| l.contains("conn_tls_")) {
        let name = line.split_whitespace().last().unwrap();
        assert!(line.contains(&format!(" {} ", nodes[name])), "{line}");
    }
}

/// Each function conntls.map lists, with the version node it is listed under.
fn map_nodes(map: &str) -> std::collections::HashMap<String, String> {
    let mut node = String::new();
    let mut nodes = std::collections::HashMap::new();
    for line in map.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix(" {").filter(|n| n.starts_with("CONNTLS_")) {
            node = name.to_string();
        } else if let Some(function) = line.strip_suffix(';').filter(|l| l.starts_with("conn_tls_")) {
            nodes.insert(function.to_string(), node.clone());
        }
    }
    nodes
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
    let linked = stdout_of(Command::new("ldd").arg(&exe).env_remove("LD_LIBRARY_PATH"));
    assert!(linked.contains(&format!("{}/libconntls.so.0", lib.display())), "{linked}");
    run_ok(&mut Command::new(&exe));

    // Static linking as the README says, with the .so installed beside the .a: the
    // program needs no libconntls.so at all.
    let static_exe = scratch_dir().join("session-static");
    let static_flags = stdout_of(
        Command::new("pkg-config").env("PKG_CONFIG_PATH", lib.join("pkgconfig")).args(["--cflags", "--libs", "conntls-static"]),
    );
    assert!(static_flags.contains(&format!("{}/libconntls.a", lib.display())), "{static_flags}");
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror"])
        .arg("-iquote")
        .arg(root().join("c_tests"))
        .arg(root().join("c_tests/session.c"))
        .args(static_flags.split_whitespace())
        .arg("-o")
        .arg(&static_exe);
    stdout_of(&mut cc);
    let linked = stdout_of(Command::new("ldd").arg(&static_exe).env_remove("LD_LIBRARY_PATH"));
    assert!(!linked.contains("libconntls"), "{linked}");
    run_ok(&mut Command::new(&static_exe));
}

#[test]
fn destdir_install_for_packagers() {
    let dest = scratch_dir();
    make_install(&["PREFIX=/usr".into(), "LIBDIR=/usr/lib/x86_64-linux-gnu".into(), format!("DESTDIR={}", dest.display())]);
    let lib = dest.join("usr/lib/x86_64-linux-gnu");
    for f in ["libconntls.so", "libconntls.so.0", "libconntls.a", "pkgconfig/conntls.pc", "pkgconfig/conntls-static.pc"] {
        assert!(lib.join(f).exists(), "{f} missing");
    }
    let pc = std::fs::read_to_string(lib.join("pkgconfig/conntls.pc")).unwrap();
    assert!(pc.contains("prefix=/usr\n") && pc.contains("libdir=/usr/lib/x86_64-linux-gnu\n") && pc.contains("Requires.private: openssl"), "{pc}");
}

/// Packagers who build with cargo-c get the soname from the crate's major version
/// (`version_suffix_components = 1` in Cargo.toml): it must be the one the Makefile links
/// and conntls.map versions. (CI has no cargo-c; README says how it was checked.)
#[test]
fn cargo_c_metadata_gives_the_same_soname() {
    let read = |f: &str| std::fs::read_to_string(root().join(f)).unwrap();
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    assert!(read("Cargo.toml").contains("\n[package.metadata.capi.library]\nversion_suffix_components = 1\n"));
    assert!(read("Makefile").contains(&format!("\nABI := {major}\n")));
    assert!(read("conntls.map").contains(&format!("\nCONNTLS_{major} {{\n")));
}
