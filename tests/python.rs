//! The Python binding (bindings/python) as a user gets it: a virtual environment in
//! target/py-venv, `pip install ./bindings/python[test]` (cffi, pytest and redis-py from
//! PyPI), then its pytest suite against this build's library and real peers.
mod common;
use common::*;

use std::process::Command;

#[test]
fn python_binding_tests() {
    let python = python_with_binding();
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
