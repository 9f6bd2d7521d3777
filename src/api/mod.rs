//! Every exported `conn_tls_*` function, one file per C object. Each is a thin boundary:
//! argument checks, `boundary!`, a status code. The doc comments become the header's.
//!
//! What makes a call safe (live handles, buffers as long as their lengths, which thread)
//! is written for C callers in each function's comment, which is the header; a Rust
//! "# Safety" section in the same comment would land there as well.
#![allow(clippy::missing_safety_doc)]

pub mod config;
pub mod connection;
pub mod context;
pub mod library;
pub mod pool;
