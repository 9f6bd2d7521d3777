//! The ABI check: libabigail's abidiff of this build against abi/libconntls.so.0.abi, the
//! reference of the current release (`make abi-reference`). Added functions pass; a
//! removed or changed function fails, unless the soname changed too. What the opaque
//! handles point to is not ABI (abi/conntls.abignore). The second test proves the check
//! on edited copies of the reference: a removed function, a changed parameter, and a
//! changed private struct, which must not count.
mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn reference() -> String {
    std::fs::read_to_string(root().join("abi/libconntls.so.0.abi")).expect("abi/libconntls.so.0.abi")
}

/// abidiff's exit status and report for `reference` (a file) against the build.
fn abidiff(reference: &Path, suppressed: bool) -> (i32, String) {
    let mut cmd = Command::new("abidiff");
    cmd.arg("--no-added-syms");
    if suppressed {
        cmd.arg("--suppressions").arg(root().join("abi/conntls.abignore"));
    }
    let out = cmd.arg(reference).arg(lib_dir().join("libconntls.so.0")).output().expect("run abidiff (Debian: abigail-tools)");
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn soname_of_build() -> String {
    let out = Command::new("readelf").arg("-d").arg(lib_dir().join("libconntls.so.0")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.split_once("Library soname: [")).map(|(_, s)| s.trim_end_matches(']').to_string()).unwrap()
}

#[test]
fn abi_matches_the_reference() {
    let reference = reference();
    let soname = reference.split("soname='").nth(1).and_then(|s| s.split('\'').next()).unwrap().to_string();
    if soname != soname_of_build() {
        println!("soname changed ({soname} -> {}): a new ABI, nothing to compare", soname_of_build());
        return;
    }
    let (status, report) = abidiff(&root().join("abi/libconntls.so.0.abi"), true);
    assert_eq!(status, 0, "the ABI of {soname} changed (only additions are allowed within a soname):\n{report}");
}

/// The declaration of function `name` in an abidw dump, and its ELF symbol line.
fn function_of<'a>(abi: &'a str, name: &str) -> (&'a str, &'a str) {
    let start = abi.find(&format!("<function-decl name='{name}'")).unwrap_or_else(|| panic!("{name} not in the reference"));
    let end = start + abi[start..].find("</function-decl>").unwrap() + "</function-decl>".len();
    let symbol = abi.lines().find(|l| l.contains(&format!("<elf-symbol name='{name}'"))).unwrap();
    (&abi[start..end], symbol)
}

#[test]
fn abi_check_catches_changes() {
    let abi = reference();
    let dir = scratch_dir();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (decl, symbol) = function_of(&abi, "conn_tls_status_name");

    // The reference lacks a function the build has: an addition, which passes.
    let added = write("added.abi", abi.replace(decl, "").replace(&format!("{symbol}\n"), ""));
    let (status, report) = abidiff(&added, true);
    assert_eq!(status, 0, "an added function must pass:\n{report}");

    // The reference has a function the build lacks: a removal, which fails.
    let gone = |s: &str| s.replace("conn_tls_status_name", "conn_tls_gone");
    let removed =
        write("removed.abi", abi.replace(decl, &format!("{decl}\n{}", gone(decl))).replace(symbol, &format!("{symbol}\n{}", gone(symbol))));
    let (status, report) = abidiff(&removed, true);
    assert_ne!(status, 0, "a removed function must fail");
    assert!(report.contains("1 Removed function") && report.contains("conn_tls_gone"), "{report}");

    // A parameter whose type differs (conn_tls_read's size_t len, int in the reference).
    let (read, _) = function_of(&abi, "conn_tls_read");
    let len_type = read.split("<parameter type-id='").find(|p| p.contains("name='len'")).and_then(|p| p.split('\'').next()).unwrap();
    let int_type = abi.split("<type-decl name='i32'").nth(1).and_then(|t| t.split("id='").nth(1)).and_then(|t| t.split('\'').next()).unwrap();
    let changed_read = read.replace(&format!("type-id='{len_type}' name='len'"), &format!("type-id='{int_type}' name='len'"));
    assert_ne!(changed_read, read);
    let changed = write("changed.abi", abi.replace(read, &changed_read));
    let (status, report) = abidiff(&changed, true);
    assert_ne!(status, 0, "a changed signature must fail");
    assert!(report.contains("1 Changed") && report.contains("conn_tls_read"), "{report}");

    // The struct behind conn_tls grows: that is not ABI, but only the suppression says so.
    let decl_start = abi.find("<class-decl name='conntls::connection::Connection' size-in-bits='").or_else(|| abi.find("<class-decl name='Connection' size-in-bits='"));
    let decl_start = decl_start.expect("struct Connection in the reference");
    let size_at = decl_start + abi[decl_start..].find("size-in-bits='").unwrap() + "size-in-bits='".len();
    let size_end = size_at + abi[size_at..].find('\'').unwrap();
    let bigger = format!("{}{}{}", &abi[..size_at], abi[size_at..size_end].parse::<u64>().unwrap() + 64, &abi[size_end..]);
    let private = write("private.abi", bigger);
    let (status, report) = abidiff(&private, true);
    assert_eq!(status, 0, "a change behind an opaque handle must not count:\n{report}");
    let (status, _) = abidiff(&private, false);
    assert_ne!(status, 0, "without the suppression the same change is reported");
}
