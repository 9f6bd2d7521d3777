//! Every exported `conn_tls_*` function, one file per C object. Each is a thin boundary:
//! argument checks, `boundary!`, a status code. The doc comments become the header's.

pub mod config;
pub mod connection;
pub mod context;
pub mod library;
pub mod pool;
