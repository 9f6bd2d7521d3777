//! Gives the shared library its soname, so distros can package it as libconntls.so.0
//! without cargo-c.

/// The ABI version: bumped only when a released function changes signature or meaning,
/// together with the crate's major version, from which cargo-c takes its soname
/// (Cargo.toml); the Makefile uses the same number.
const ABI_VERSION: &str = "0";

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libconntls.so.{ABI_VERSION}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
