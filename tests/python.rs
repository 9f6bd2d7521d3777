//! The Python binding (bindings/python) as a user gets it: a virtual environment in
//! target/py-venv, `pip install ./bindings/python[test]` (cffi, pytest and redis-py from
//! PyPI), then its pytest suite against this build's library and real peers.
mod common;
use common::*;

use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn python_binding_tests() {
    let venv = root().join("target/py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    let pip = |args: &[&str]| run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(args));
    pip(&[&format!("{}[test]", root().join("bindings/python").display())]);
    // Reinstalled every run, so the tests see this tree's package, not an older one.
    pip(&["--force-reinstall", "--no-deps", &root().join("bindings/python").display().to_string()]);
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-rs", "-s", "-p", "no:cacheprovider"])
        .arg(root().join("bindings/python/tests"))
        .env("CONNTLS_LIBRARY", lib_dir().join("libconntls.so.0"))
        .env("CONNTLS_ROOT", root())
        .env_remove("LD_LIBRARY_PATH")
        .current_dir(root().join("bindings/python/tests"))
        .output()
        .expect("run pytest");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "pytest failed:\n{text}");
}
