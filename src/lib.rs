//! conntls: TLS connections for C servers, over the system OpenSSL.
//!
//! The safe core (config, context, connection, writev, liveness, socket_bio) knows nothing
//! of C; `api` exports the `conn_tls_*` functions through the boundary in `ffi`.

pub mod api;
pub mod config;
pub mod connection;
pub mod context;
pub mod ffi;
mod fork;
pub mod liveness;
pub mod logging;
pub mod pool;
/// The OpenSSL declarations in here are not API: cbindgen leaves them out of the header.
/// cbindgen:ignore
mod ossl;
mod socket_bio;
pub mod sources;
pub mod writev;
