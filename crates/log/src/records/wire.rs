//! The v2 record layout and Kafka's varints, parsed without trusting a byte.
//!
//! ```text
//! length: varint            bytes after this field, up to the end of the record
//! attributes: i8            unused
//! timestampDelta: varlong   from the batch's baseTimestamp
//! offsetDelta: varint       from the batch's baseOffset
//! keyLength: varint         -1: null key
//! key: [u8; keyLength]
//! valueLength: varint       -1: null value
//! value: [u8; valueLength]
//! headerCount: varint
//! headerCount × { headerKeyLength: varint (≥ 0), headerKey, headerValueLength: varint (-1: null), headerValue }
//! ```
//!
//! Varints are zig-zag LEB128: a varint fits 32 bits in at most 5 bytes, a varlong 64 bits in at
//! most 10; an encoding with bits past that width is refused rather than truncated. Every length
//! is checked against the bytes left in its record (itself checked against the bytes left in the
//! batch) before anything is sliced, and a header count against what its headers could fill, so
//! no count read here ever sizes anything. Header keys are UTF-8 in Kafka's clients, but brokers
//! never decode them, and neither do we.

use super::RecordError;

const CORRUPT_VARINT: RecordError = RecordError::Corrupt("varint is truncated or overflows");

/// Reads an unsigned LEB128 of at most `MAX_BYTES` bytes whose value fits in `BITS` bits.
#[inline(always)]
fn read_unsigned<'r, const MAX_BYTES: usize, const BITS: u32>(
    buf: &mut &'r [u8],
) -> Result<u64, RecordError> {
    // One or two bytes are by far the most common cases (lengths and deltas below 8192): the
    // produce path reads about eight varints per record.
    let whole: &'r [u8] = buf;
    match whole {
        [b0, rest @ ..] if b0 & 0x80 == 0 => {
            *buf = rest;
            Ok(u64::from(*b0))
        }
        [b0, b1, rest @ ..] if b1 & 0x80 == 0 => {
            *buf = rest;
            Ok(u64::from(b0 & 0x7f) | u64::from(*b1) << 7)
        }
        _ => read_unsigned_long::<MAX_BYTES, BITS>(buf),
    }
}

#[inline(never)]
fn read_unsigned_long<const MAX_BYTES: usize, const BITS: u32>(
    buf: &mut &[u8],
) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(MAX_BYTES).enumerate() {
        let shift = 7 * i as u32;
        let chunk = u64::from(b & 0x7f);
        // In the last byte that may carry bits, anything above the width is an overflow.
        if shift + 7 > BITS && chunk >> (BITS - shift) != 0 {
            return Err(CORRUPT_VARINT);
        }
        value |= chunk << shift;
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(CORRUPT_VARINT)
}

/// Kafka's varint: a zig-zag `i32` in at most 5 bytes.
#[inline(always)]
pub(crate) fn read_varint(buf: &mut &[u8]) -> Result<i32, RecordError> {
    let v = read_unsigned::<5, 32>(buf)? as u32;
    Ok((v >> 1) as i32 ^ -((v & 1) as i32))
}

/// Kafka's varlong: a zig-zag `i64` in at most 10 bytes.
#[inline(always)]
pub(crate) fn read_varlong(buf: &mut &[u8]) -> Result<i64, RecordError> {
    let v = read_unsigned::<10, 64>(buf)?;
    Ok((v >> 1) as i64 ^ -((v & 1) as i64))
}

/// Splits `n` bytes off the front of `buf`, or fails with `what`.
#[inline(always)]
fn take<'r>(buf: &mut &'r [u8], n: usize, what: &'static str) -> Result<&'r [u8], RecordError> {
    if n > buf.len() {
        return Err(RecordError::Corrupt(what));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// A length-prefixed byte string whose length may be -1 (null).
#[inline(always)]
fn read_nullable<'r>(
    buf: &mut &'r [u8],
    what: &'static str,
) -> Result<Option<&'r [u8]>, RecordError> {
    match read_varint(buf)? {
        -1 => Ok(None),
        n => {
            let n = usize::try_from(n).map_err(|_| RecordError::Corrupt(what))?;
            take(buf, n, what).map(Some)
        }
    }
}

/// One header of a record: its key and (nullable) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'r> {
    /// The header key (UTF-8 by Kafka's convention; not checked).
    pub key: &'r [u8],
    /// The header value; `None` when null.
    pub value: Option<&'r [u8]>,
}

/// Reads one header, advancing `buf`.
#[inline]
fn read_header<'r>(buf: &mut &'r [u8]) -> Result<Header<'r>, RecordError> {
    let key_len = usize::try_from(read_varint(buf)?)
        .map_err(|_| RecordError::Corrupt("negative header key length"))?;
    let key = take(buf, key_len, "header key past the end of the record")?;
    let value = read_nullable(buf, "header value length out of bounds")?;
    Ok(Header { key, value })
}

/// The headers of one record, read lazily from bytes already checked by [`parse_record`].
#[derive(Debug, Clone)]
pub struct Headers<'r> {
    rest: &'r [u8],
    remaining: usize,
}

impl<'r> Iterator for Headers<'r> {
    type Item = Header<'r>;
    fn next(&mut self) -> Option<Header<'r>> {
        if self.remaining == 0 {
            return None;
        }
        // Checked when the record was parsed; a failure here would mean a bug, so it ends.
        match read_header(&mut self.rest) {
            Ok(h) => {
                self.remaining -= 1;
                Some(h)
            }
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// One record as laid out in the batch: deltas still relative to the batch header.
#[derive(Debug, Clone)]
pub(crate) struct RawRecord<'r> {
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key: Option<&'r [u8]>,
    pub(crate) value: Option<&'r [u8]>,
    pub(crate) headers: Headers<'r>,
}

/// Parses the record at the front of `buf`, checking every field against the record's length
/// and the length against `buf`; returns the record and the bytes after it.
#[inline]
pub(crate) fn parse_record(buf: &[u8]) -> Result<(RawRecord<'_>, &[u8]), RecordError> {
    let mut rest = buf;
    let len = usize::try_from(read_varint(&mut rest)?)
        .map_err(|_| RecordError::Corrupt("negative record length"))?;
    let mut body = take(&mut rest, len, "record length past the end of the batch")?;
    take(&mut body, 1, "record too short for its attributes")?;
    let timestamp_delta = read_varlong(&mut body)?;
    let offset_delta = read_varint(&mut body)?;
    let key = read_nullable(&mut body, "key length out of bounds")?;
    let value = read_nullable(&mut body, "value length out of bounds")?;
    let count = usize::try_from(read_varint(&mut body)?)
        .map_err(|_| RecordError::Corrupt("negative header count"))?;
    // Each header takes at least two bytes (its two lengths).
    if count > body.len() / 2 {
        return Err(RecordError::Corrupt(
            "header count past the end of the record",
        ));
    }
    let headers = Headers {
        rest: body,
        remaining: count,
    };
    for _ in 0..count {
        read_header(&mut body)?;
    }
    if !body.is_empty() {
        return Err(RecordError::Corrupt(
            "record length does not match its fields",
        ));
    }
    Ok((
        RawRecord {
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(bytes: &[u8]) -> Result<i32, RecordError> {
        read_varint(&mut &bytes[..])
    }
    fn varlong(bytes: &[u8]) -> Result<i64, RecordError> {
        read_varlong(&mut &bytes[..])
    }

    #[test]
    fn varints_decode_zig_zag_and_refuse_overflow() {
        assert_eq!(varint(&[0x00]), Ok(0));
        assert_eq!(varint(&[0x01]), Ok(-1));
        assert_eq!(varint(&[0x02]), Ok(1));
        assert_eq!(varint(&[0xfe, 0xff, 0xff, 0xff, 0x0f]), Ok(i32::MAX));
        assert_eq!(varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(i32::MIN));
        // Bits past 32 in the fifth byte, a sixth byte, a missing byte.
        assert!(varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        assert!(varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert!(varint(&[0x80]).is_err());
        assert!(varint(&[]).is_err());
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varlong(&max), Ok(i64::MAX));
        let mut over = max;
        over[9] = 0x03;
        assert!(varlong(&over).is_err());
        assert!(varlong(&[0x80; 11]).is_err());
    }

    /// A record with the given fields, its length prefix computed.
    fn record(fields: &[u8]) -> Vec<u8> {
        let mut out = vec![(fields.len() as u8) << 1];
        out.extend_from_slice(fields);
        out
    }

    #[test]
    fn parses_a_record_with_headers() {
        // attributes, ts delta 1, offset delta 2, key "k", value null, 2 headers.
        let r = record(&[0, 2, 4, 2, b'k', 1, 4, 2, b'a', 2, b'x', 0, 1]);
        let (rec, rest) = parse_record(&r).expect("valid");
        assert!(rest.is_empty());
        assert_eq!((rec.timestamp_delta, rec.offset_delta), (1, 2));
        assert_eq!((rec.key, rec.value), (Some(&b"k"[..]), None));
        let headers: Vec<Header<'_>> = rec.headers.collect();
        assert_eq!(
            headers,
            vec![
                Header {
                    key: b"a",
                    value: Some(b"x")
                },
                Header {
                    key: b"",
                    value: None
                }
            ]
        );
    }

    #[test]
    fn refuses_lengths_and_counts_past_the_record() {
        // 2^31 - 1 headers in a 7-byte record.
        let huge_count = record(&[0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert!(parse_record(&huge_count).is_err());
        // Key length 5 with 1 byte left, negative key length -2, negative record length.
        assert!(parse_record(&record(&[0, 0, 0, 10, b'k', 1, 0])).is_err());
        assert!(parse_record(&record(&[0, 0, 0, 3, 1, 0])).is_err());
        assert!(parse_record(&[0x01, 0]).is_err());
        // Record length past the buffer, and fields shorter than the record length.
        assert!(parse_record(&[0x7e, 0, 0, 0, 1, 1, 0]).is_err());
        assert!(parse_record(&record(&[0, 0, 0, 1, 1, 0, 9])).is_err());
        // A negative header key length.
        assert!(parse_record(&record(&[0, 0, 0, 1, 1, 2, 3, 1])).is_err());
    }
}
