//! The write path: the caller's pieces become full 16 KiB records.
//!
//! Small pieces are copied into one staging record (per thread, emptied before the call
//! returns); pieces of a record or more go to SSL_write straight from the caller's memory,
//! one whole record per call. The socket BIO takes every record (sending it at once, or
//! keeping the ciphertext the socket refused), so every SSL_write finishes: there is never
//! a blocked write for OpenSSL's retry rule to apply to, and the caller's buffers are free
//! as soon as the call returns.
//!
//! New bytes are committed only while no ciphertext waits for the socket. So what waits is
//! at most the unsent tail of one record (plus the staging record finished with it),
//! whatever the caller's iov, and a full socket costs one copy of that tail, not a queue.

use std::cell::RefCell;
use std::ffi::c_int;

use openssl_sys as ffi;

use crate::connection::{Connection, Error};
use crate::ossl;

/// TLS's largest record payload.
pub(crate) const RECORD: usize = 16 * 1024;

/// One record being filled from small pieces.
struct Staging {
    buf: Box<[u8; RECORD]>,
    len: usize,
}

impl Staging {
    /// Copies as much of `data` as fits; returns how much did.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(RECORD - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn filled(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

thread_local! {
    /// Per thread rather than per connection, so idle connections hold no buffer; it is
    /// always empty between calls.
    static STAGING: RefCell<Staging> = RefCell::new(Staging { buf: Box::new([0; RECORD]), len: 0 });
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
        if self.pending_write() > 0 {
            return Err(Error::WantWrite);
        }
        STAGING.with(|staging| {
            let mut staging = staging.borrow_mut();
            staging.len = 0;
            let result = self.encrypt(pieces, &mut staging);
            staging.len = 0;
            result
        })
    }

    fn encrypt<'a, I>(&mut self, pieces: I, staging: &mut Staging) -> Result<usize, Error>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        let mut committed = 0;
        'pieces: for piece in pieces {
            let mut rest = piece;
            // The common case: a small piece joins the staging record, nothing more.
            if rest.len() < RECORD - staging.len {
                staging.fill(rest);
                committed += rest.len();
                continue;
            }
            while !rest.is_empty() {
                if staging.len == 0 && rest.len() >= RECORD {
                    self.ssl_write(&rest[..RECORD])?;
                    rest = &rest[RECORD..];
                    committed += RECORD;
                } else {
                    let n = staging.fill(rest);
                    rest = &rest[n..];
                    committed += n;
                    if staging.len < RECORD {
                        continue;
                    }
                    self.ssl_write(staging.filled())?;
                    staging.len = 0;
                }
                // Only a record just written can have left ciphertext waiting.
                if self.pending_write() > 0 {
                    break 'pieces;
                }
            }
        }
        if staging.len > 0 {
            self.ssl_write(staging.filled())?;
        }
        Ok(committed)
    }

    /// Encrypts all of `data` (one record). Anything but complete success is fatal: the
    /// socket BIO never asks for a retry, so none may be left half done.
    fn ssl_write(&mut self, data: &[u8]) -> Result<(), Error> {
        ossl::clear_error_queue();
        let r = unsafe { ffi::SSL_write(self.ssl_ptr(), data.as_ptr().cast(), data.len() as c_int) };
        if r > 0 && r as usize == data.len() {
            return Ok(());
        }
        match self.classify_call(r, "a write") {
            fatal @ Error::Fatal(_) => Err(fatal),
            _ => Err(self.die(format!("SSL_write of {} bytes asked for a retry, which the socket BIO never causes", data.len()))),
        }
    }
}
