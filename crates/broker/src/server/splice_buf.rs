//! `SpliceBuf`: an encode buffer that leaves holes where record bytes go, so a Fetch response can
//! be encoded by `kafka-protocol` while its records are sent straight from the segment files
//! (sendfile) instead of being copied through user space.
//!
//! A handler stands in for each partition's records with a slice of [`placeholder`]: the encoder
//! writes the length prefix as usual and then calls `put_slice` with that slice; `SpliceBuf`
//! recognises the placeholder by address and records a hole of that length instead of copying.
//! The placeholder is a large zeroed static: it lives in `.bss`, is never written, and reading
//! it never happens, so it costs address space only.

// `bytes::BufMut` is an `unsafe trait`; every method delegates to `BytesMut`, which upholds it.
#![allow(unsafe_code)]

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// The largest records field sent without copying; larger ones fall back to a copy.
pub(crate) const PLACEHOLDER_MAX: usize = 128 << 20;

static PLACEHOLDER: [u8; PLACEHOLDER_MAX] = [0; PLACEHOLDER_MAX];

/// A stand-in for `len` bytes of records, or `None` when too large for the placeholder.
pub(crate) fn placeholder(len: usize) -> Option<Bytes> {
    (len > 0 && len <= PLACEHOLDER_MAX).then(|| Bytes::from_static(&PLACEHOLDER[..len]))
}

fn is_placeholder(src: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let p = src.as_ptr() as usize;
    !src.is_empty() && p >= start && p + src.len() <= start + PLACEHOLDER_MAX
}

/// Encoded bytes plus the holes (offset in `buf`, length) where records go.
#[derive(Debug, Default)]
pub(crate) struct SpliceBuf {
    pub(crate) buf: BytesMut,
    pub(crate) holes: Vec<(usize, usize)>,
}

impl SpliceBuf {
    pub(crate) fn with_capacity(n: usize) -> Self {
        SpliceBuf {
            buf: BytesMut::with_capacity(n),
            holes: Vec::new(),
        }
    }
    /// Bytes that holes add to the frame.
    pub(crate) fn hole_bytes(&self) -> usize {
        self.holes.iter().map(|(_, l)| l).sum()
    }
}

// SAFETY: all methods forward to the inner `BytesMut`, whose `BufMut` implementation upholds the
// trait's contract; `put_slice` either forwards or writes nothing (a hole), never touching memory.
unsafe impl BufMut for SpliceBuf {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }
    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller guarantees `cnt` bytes of `chunk_mut` were initialised, which is
        // exactly `BytesMut::advance_mut`'s requirement.
        unsafe { self.buf.advance_mut(cnt) }
    }
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }
    fn put_slice(&mut self, src: &[u8]) {
        if is_placeholder(src) {
            self.holes.push((self.buf.len(), src.len()));
        } else {
            self.buf.put_slice(src);
        }
    }
}

impl ByteBufMut for SpliceBuf {
    fn offset(&self) -> usize {
        self.buf.len()
    }
    fn seek(&mut self, offset: usize) {
        self.buf.resize(offset, 0);
    }
    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        &mut self.buf[r]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_slices_become_holes() {
        let mut b = SpliceBuf::default();
        b.put_slice(b"head");
        let p = placeholder(10).expect("fits");
        b.put_slice(&p);
        b.put_slice(b"tail");
        assert_eq!(&b.buf[..], b"headtail");
        assert_eq!(b.holes, vec![(4, 10)]);
        assert!(placeholder(0).is_none());
        assert!(placeholder(PLACEHOLDER_MAX + 1).is_none());
    }
}
