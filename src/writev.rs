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

use crate::connection::{Error, Tls};
use crate::ossl;

/// TLS's largest record payload.
pub(crate) const RECORD: usize = 16 * 1024;

/// `dst.copy_from_slice(src)`, inlined for pieces of up to 64 bytes: a call into libc's
/// memcpy spends more on the call and its size dispatch than on moving a short piece, and
/// small mixes (64-byte replies by the hundred) are made of nothing else. Two overlapping
/// fixed-size moves cover every length of a size class.
#[inline(always)]
fn copy_piece(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() || n > 64 {
        dst.copy_from_slice(src);
    } else if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

thread_local! {
    /// The record being filled from small pieces. Per thread rather than per connection,
    /// so idle connections hold no buffer; what it holds matters only during one call.
    static STAGING: RefCell<Box<[u8; RECORD]>> = RefCell::new(Box::new([0; RECORD]));
}

/// A piece of a write: its bytes, or why the caller's description of it is unusable.
pub type Piece<'a> = Result<&'a [u8], BadPiece>;

/// What writev(2) would refuse in one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPiece {
    /// A NULL address with a non-zero length.
    NullBase,
    /// A length above SSIZE_MAX.
    TooLong,
}

/// Whether `pieces`, after pieces adding up to `sum` bytes, pass writev(2)'s checks:
/// every piece usable, all lengths adding up to at most SSIZE_MAX.
fn pieces_ok<'a>(pieces: impl Iterator<Item = Piece<'a>>, mut sum: usize) -> bool {
    if sum > isize::MAX as usize {
        return false;
    }
    for piece in pieces {
        let Ok(piece) = piece else { return false };
        // Each length is at most SSIZE_MAX (iov_piece refuses more), so this cannot wrap.
        sum += piece.len();
        if sum > isize::MAX as usize {
            return false;
        }
    }
    true
}

/// The error for a call whose pieces fail `pieces_ok`, naming the first bad one.
#[cold]
fn bad_call<'a>(pieces: impl Iterator<Item = Piece<'a>>) -> Error {
    for (i, piece) in pieces.enumerate() {
        match piece {
            Err(BadPiece::NullBase) => return Error::Invalid(format!("writev: iov[{i}] has a NULL base and a non-zero length")),
            Err(BadPiece::TooLong) => return Error::Invalid(format!("writev: iov[{i}] has a length above SSIZE_MAX")),
            Ok(_) => {}
        }
    }
    Error::Invalid("writev: the lengths add up to more than SSIZE_MAX".into())
}

impl Tls {
    /// Commits a prefix of the concatenated `pieces` and returns its length.
    /// Err(WantWrite/WantRead): nothing of this call was committed. A bad piece anywhere,
    /// or lengths adding up past SSIZE_MAX, fail the call before anything happens: nothing
    /// is committed, no handshake step taken, nothing flushed.
    pub fn writev<'a, I>(&mut self, pieces: I) -> Result<usize, Error>
    where
        I: Iterator<Item = Piece<'a>> + Clone,
    {
        // On the fast path pieces are checked as they are copied (see encrypt); whatever
        // comes before that must not happen for bad input, so then all are checked first.
        if (!self.is_open() || self.pending_write() > 0) && !pieces_ok(pieces.clone(), 0) {
            return Err(bad_call(pieces));
        }
        self.ensure_established()?;
        // Every call moves committed bytes along, even one with nothing new to write.
        if self.pending_write() > 0 {
            self.flush_out()?;
        }
        if pieces.clone().all(|piece| matches!(piece, Ok(p) if p.is_empty())) {
            return Ok(0);
        }
        if self.pending_write() > 0 {
            return Err(Error::WantWrite);
        }
        STAGING.with(|staging| self.encrypt(pieces, &mut staging.borrow_mut()))
    }

    // Out of line on purpose: inlined into writev, it lost the inlining of copy_piece, and
    // 64-byte pieces went back to memcpy calls (callgrind, benches/writev_instructions.sh).
    #[inline(never)]
    fn encrypt<'a, I>(&mut self, mut pieces: I, staging: &mut [u8; RECORD]) -> Result<usize, Error>
    where
        I: Iterator<Item = Piece<'a>> + Clone,
    {
        let all = pieces.clone();
        // Bytes in records already encrypted, and bytes staged for the next one.
        let mut written = 0;
        let mut staged = 0;
        // A bad piece met while only staging commits nothing; the pieces after the first
        // record's end are checked before it is encrypted (with the sum of all lengths,
        // which only a call that fills a record can take past SSIZE_MAX). So a call of
        // small pieces that fits one record (the common reply) reads its iov once.
        let mut rest_checked = false;
        'pieces: while let Some(piece) = pieces.next() {
            let Ok(piece) = piece else {
                return Err(bad_call(all));
            };
            // The common case: a small piece joins the staging record, nothing more.
            if piece.len() < RECORD - staged {
                copy_piece(&mut staging[staged..staged + piece.len()], piece);
                staged += piece.len();
                continue;
            }
            // This piece completes at least one record.
            if !rest_checked {
                // No record is done yet, so the pieces before this one add up to `staged`.
                if !pieces_ok(pieces.clone(), staged + piece.len()) {
                    return Err(bad_call(all));
                }
                rest_checked = true;
            }
            let mut rest = piece;
            while !rest.is_empty() {
                if staged == 0 && rest.len() >= RECORD {
                    self.ssl_write(&rest[..RECORD])?;
                    rest = &rest[RECORD..];
                } else {
                    let n = rest.len().min(RECORD - staged);
                    staging[staged..staged + n].copy_from_slice(&rest[..n]);
                    staged += n;
                    rest = &rest[n..];
                    if staged < RECORD {
                        continue;
                    }
                    self.ssl_write(&staging[..])?;
                    staged = 0;
                }
                written += RECORD;
                // Only a record just written can have left ciphertext waiting.
                if self.pending_write() > 0 {
                    break 'pieces;
                }
            }
        }
        if staged > 0 {
            self.ssl_write(&staging[..staged])?;
        }
        Ok(written + staged)
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

#[cfg(test)]
mod tests {
    use super::copy_piece;

    /// Every length of every size class, at every alignment: exactly the piece is copied,
    /// nothing around it is touched.
    #[test]
    fn copy_piece_copies_exactly() {
        let src: Vec<u8> = (0..200u8).collect();
        for len in 0..=130 {
            for offset in 0..8 {
                let mut dst = [0xEEu8; 160];
                copy_piece(&mut dst[offset..offset + len], &src[3..3 + len]);
                assert_eq!(&dst[offset..offset + len], &src[3..3 + len], "len {len} offset {offset}");
                assert!(dst[..offset].iter().chain(&dst[offset + len..]).all(|&b| b == 0xEE), "len {len} offset {offset}");
            }
        }
    }
}
