//! `gen-header`: writes include/conntls.h from the crate's exported functions.
//! `gen-header --check`: fails when the checked-in header differs from a fresh generation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The version in the root Cargo.toml's [package] section.
fn crate_version(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| l.trim().strip_prefix("version = ").map(|v| v.trim_matches('"').to_string()))
        .expect("Cargo.toml has a package version")
}

fn generate(root: &Path) -> String {
    let version = crate_version(root);
    let parts: Vec<&str> = version.split(['.', '-']).collect();
    let macros = format!(
        "\n#define CONN_TLS_VERSION \"{version}\"\n#define CONN_TLS_VERSION_MAJOR {}\n#define CONN_TLS_VERSION_MINOR {}\n#define CONN_TLS_VERSION_PATCH {}\n",
        parts[0], parts[1], parts[2]
    );
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("read cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .with_after_include(macros)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root");
    let header = root.join("include/conntls.h");
    let fresh = generate(&root);
    if std::env::args().any(|a| a == "--check") {
        let current = std::fs::read_to_string(&header).unwrap_or_default();
        if current != fresh {
            eprintln!("include/conntls.h is stale: run `make header` and commit the result");
            return ExitCode::FAILURE;
        }
        println!("include/conntls.h is current");
    } else {
        std::fs::write(&header, fresh).expect("write include/conntls.h");
        println!("wrote {}", header.display());
    }
    ExitCode::SUCCESS
}
