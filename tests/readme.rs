//! README.md's complete C examples, extracted as they are, compiled the way the README
//! says (default C dialect, warnings as errors) and run: the server echoes what the
//! client sends.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The code block that follows `<!-- readme example: NAME -->` in README.md.
pub fn readme_example(name: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let marker = format!("<!-- readme example: {name} -->");
    let after = &readme[readme.find(&marker).unwrap_or_else(|| panic!("no {marker} in README.md")) + marker.len()..];
    let body = &after[after.find("```").unwrap()..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].to_string() + "\n"
}

#[test]
fn client_and_server_examples_work() {
    let dir = scratch_dir();
    let mut built = Vec::new();
    for name in ["client", "server"] {
        let source = dir.join(format!("{name}.c"));
        std::fs::write(&source, readme_example(&format!("{name}.c"))).unwrap();
        let exe = dir.join(name);
        let lib = lib_dir();
        let out = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root().join("include"))
            .arg(&source)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lconntls")
            .output()
            .unwrap();
        assert!(out.status.success(), "README's {name}.c does not build:\n{}", String::from_utf8_lossy(&out.stderr));
        built.push(exe);
    }
    let mut server = Command::new(&built[1])
        .env_remove("LD_LIBRARY_PATH")
        .arg(certs().join("server.crt"))
        .arg(certs().join("server.key"))
        .arg("2")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("port ").expect("the server names its port").to_string();
    for _ in 0..2 {
        let out = run_ok(Command::new(&built[0]).arg(&port).arg(certs().join("ca.crt")));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("TLSv1.3 ") && text.ends_with(": hello over TLS\n"), "{text}");
    }
    let status = server.wait().unwrap();
    assert!(status.success(), "the server example ended with {status}");
}
