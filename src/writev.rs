//! The write path: the caller's pieces become full 16 KiB records.
//!
//! Small pieces are copied into one staging record (per thread, emptied before the call
//! returns); pieces of a record or more go to SSL_write straight from the caller's memory
//! in whole records. The socket BIO takes every record (sending it at once, or keeping the
//! ciphertext the socket refused), so every SSL_write finishes: there is never a blocked
//! write for OpenSSL's retry rule to apply to, and the caller's buffers are free as soon
//! as the call returns.
//!
//! What a call commits is bounded by how much ciphertext already waits (`OUT_LIMIT`), not
//! by the caller's iov: a slow reader costs at most about OUT_LIMIT + 64 KiB per connection.

use std::cell::RefCell;
use std::ffi::c_int;

use openssl_sys as ffi;

use crate::connection::{Connection, Error};
use crate::ossl;

/// TLS's largest record payload.
pub(crate) const RECORD: usize = 16 * 1024;
/// No new bytes are committed while this much ciphertext waits for the socket.
pub(crate) const OUT_LIMIT: usize = 64 * 1024;

thread_local! {
    /// The staging record. Per thread rather than per connection, so idle connections hold
    /// no buffer; it is always empty between calls.
    static STAGING: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(RECORD));
}

impl Connection {
    /// Commits a prefix of the concatenated `pieces` and returns its length.
    /// Err(WantWrite/WantRead): nothing of this call was committed.
    pub fn writev<'a, I>(&mut self, pieces: I) -> Result<usize, Error>
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        self.ensure_established()?;
        // Every call moves committed bytes along, even one with nothing new to write.
        if self.pending_write() > 0 {
            self.flush_out()?;
        }
        if pieces.clone().all(<[u8]>::is_empty) {
            return Ok(0);
        }
        if self.pending_write() >= OUT_LIMIT {
            return Err(Error::WantWrite);
        }
        STAGING.with(|staging| {
            let mut staging = staging.borrow_mut();
            staging.clear();
            let result = self.encrypt(pieces, &mut staging);
            staging.clear();
            result
        })
    }

    fn encrypt<'a, I>(&mut self, pieces: I, staging: &mut Vec<u8>) -> Result<usize, Error>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        let mut committed = 0;
        'pieces: for piece in pieces {
            let mut rest = piece;
            while !rest.is_empty() {
                if self.pending_write() >= OUT_LIMIT {
                    break 'pieces;
                }
                if staging.is_empty() && rest.len() >= RECORD {
                    let n = (rest.len() / RECORD * RECORD).min(OUT_LIMIT);
                    self.ssl_write(&rest[..n])?;
                    rest = &rest[n..];
                    committed += n;
                } else {
                    let n = (RECORD - staging.len()).min(rest.len());
                    staging.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    committed += n;
                    if staging.len() == RECORD {
                        self.ssl_write(staging)?;
                        staging.clear();
                    }
                }
            }
        }
        if !staging.is_empty() {
            self.ssl_write(staging)?;
        }
        Ok(committed)
    }

    /// Encrypts all of `data` (at most OUT_LIMIT bytes). Anything but complete success is
    /// fatal: the socket BIO never asks for a retry, so none may be left half done.
    fn ssl_write(&mut self, data: &[u8]) -> Result<(), Error> {
        ossl::clear_error_queue();
        let r = unsafe { ffi::SSL_write(self.ssl_ptr(), data.as_ptr().cast(), data.len() as c_int) };
        if r > 0 && r as usize == data.len() {
            return Ok(());
        }
        if let Some(errno) = self.io().error() {
            ossl::clear_error_queue();
            return Err(self.die(crate::liveness::describe_socket_error(errno)));
        }
        Err(self.die(ossl::with_queue(format!("SSL_write of {} bytes failed (returned {r})", data.len()))))
    }
}
