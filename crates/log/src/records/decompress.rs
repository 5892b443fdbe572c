//! Bounded decompression of a batch's records section: gzip, snappy, lz4, zstd.
//!
//! A batch of a few hundred bytes can claim gigabytes once inflated, so output is produced into a
//! buffer that never grows past the caller's `limit` (plus one byte, to tell "exactly the limit"
//! from "more"): the first byte beyond it ends decompression with [`RecordError::TooLarge`].
//! Decoders are streamed from the input slice; nothing is sized from a length in the stream
//! without checking it against the limit and against what the input could expand to.
//!
//! The framings are Kafka's: gzip members (one or more, as Java's `GZIPInputStream` reads them);
//! snappy in xerial's stream framing (a 16-byte header, then blocks each prefixed by its
//! big-endian u32 length) or, without that header, one raw block, as Kafka's client falls back
//! to; lz4 frames; zstd frames, with the decoder's window capped at the limit so a frame cannot
//! make the decoder itself allocate more.

use std::io::{self, Read};

use super::RecordError;

/// The xerial snappy stream magic (`SnappyCodec.MAGIC_HEADER`), then version and compatible version.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// A snappy element emits at most 64 bytes for 3 bytes of input (a 2-byte-offset copy), so a
/// block can expand about 21×; a declared length beyond 32× its block is a lie, refused before
/// anything is allocated for it.
const SNAPPY_MAX_EXPANSION: usize = 32;
/// First output buffer, as a multiple of the input (grown by doubling, capped at the limit).
const INITIAL_EXPANSION: usize = 4;
const MIN_INITIAL: usize = 4 << 10;

/// Decompresses `input` with the batch's `codec` (attributes & 7), refusing output past `limit`.
pub(super) fn decompress(codec: i16, input: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    match codec {
        1 => read_bounded(
            flate2::bufread::MultiGzDecoder::new(input),
            input,
            limit,
            "gzip",
        ),
        2 => snappy(input, limit),
        3 => {
            let decoder = lz4::Decoder::new(input).map_err(|_| failed("lz4"))?;
            read_bounded(decoder, input, limit, "lz4")
        }
        4 => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|_| failed("zstd"))?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(|_| failed("zstd"))?;
            read_bounded(decoder, input, limit, "zstd")
        }
        c => Err(RecordError::UnknownCompression(c)),
    }
}

fn failed(codec: &'static str) -> RecordError {
    RecordError::Decompress { codec }
}

/// The largest zstd window a frame may ask the decoder to allocate: the smallest covering `limit`
/// bytes (a larger window could only reach data past the limit), but at least 8 MiB (2^23),
/// the window of every compression level up to 19 when the producer streams without declaring
/// the content size, so small limits still read ordinary frames. Ultra levels (20–22) ask for
/// up to 2^27 and are read only when the limit reaches that far.
fn zstd_window_log_max(limit: usize) -> u32 {
    (usize::BITS - limit.saturating_sub(1).leading_zeros()).clamp(23, 31)
}

/// Reads `decoder` to its end into a buffer that never exceeds `limit + 1` bytes.
fn read_bounded(
    mut decoder: impl Read,
    input: &[u8],
    limit: usize,
    codec: &'static str,
) -> Result<Vec<u8>, RecordError> {
    let cap = limit.saturating_add(1);
    let initial = input
        .len()
        .saturating_mul(INITIAL_EXPANSION)
        .max(MIN_INITIAL)
        .min(cap);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    loop {
        if filled == out.len() {
            if out.len() >= cap {
                return Err(RecordError::TooLarge { limit });
            }
            let next = out.len().saturating_mul(2).max(initial).min(cap);
            out.reserve_exact(next - out.len());
            out.resize(next, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(failed(codec)),
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// Kafka's snappy: xerial-framed blocks, or one raw block when the magic is absent.
fn snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    if !input.starts_with(XERIAL_MAGIC) {
        snappy_block(input, &mut out, limit)?;
        return Ok(out);
    }
    let mut rest = input.get(XERIAL_HEADER_LEN..).ok_or(failed("snappy"))?;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(failed("snappy"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| failed("snappy"))?;
        if len > tail.len() {
            return Err(failed("snappy"));
        }
        let (block, tail) = tail.split_at(len);
        snappy_block(block, &mut out, limit)?;
        rest = tail;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, whose total stays within `limit`.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), RecordError> {
    let len = snap::raw::decompress_len(block).map_err(|_| failed("snappy"))?;
    if len > block.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
        return Err(failed("snappy"));
    }
    let start = out.len();
    let end = start
        .checked_add(len)
        .filter(|end| *end <= limit)
        .ok_or(RecordError::TooLarge { limit })?;
    out.reserve_exact(len);
    out.resize(end, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|_| failed("snappy"))?;
    if written != len {
        return Err(failed("snappy"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::compress;

    const MIB: usize = 1 << 20;

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in 1..=4 {
            let c = compress(codec, &data);
            let out = decompress(codec, &c, data.len());
            assert!(
                out.as_ref() == Ok(&data),
                "{codec}: {:?}",
                out.map(|v| v.len())
            );
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("raw");
        assert!(decompress(2, &raw, data.len()) == Ok(data));
        assert_eq!(
            decompress(5, &[], MIB),
            Err(RecordError::UnknownCompression(5))
        );
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        // 8 MiB of zeros: a few KiB compressed, a bomb for a 1 MiB limit.
        let zeros = vec![0u8; 8 * MIB];
        for codec in 1..=4 {
            let bomb = compress(codec, &zeros);
            assert!(bomb.len() < MIB / 2, "{codec}: {}", bomb.len());
            assert_eq!(
                decompress(codec, &bomb, MIB),
                Err(RecordError::TooLarge { limit: MIB }),
                "{codec}"
            );
            let exact = compress(codec, &zeros[..MIB]);
            assert_eq!(decompress(codec, &exact, MIB).map(|v| v.len()), Ok(MIB));
        }
    }

    #[test]
    fn snappy_lengths_are_checked_before_allocating() {
        // A raw block claiming 2^32 - 1 bytes from 6 bytes of input.
        let liar = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert_eq!(decompress(2, &liar, usize::MAX), Err(failed("snappy")));
        // A xerial block length past the input.
        let mut framed = compress(2, b"hello");
        framed[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decompress(2, &framed, MIB), Err(failed("snappy")));
    }

    #[test]
    fn zstd_window_follows_the_limit() {
        assert_eq!(zstd_window_log_max(0), 23);
        assert_eq!(zstd_window_log_max(MIB), 23);
        assert_eq!(zstd_window_log_max(16 * MIB), 24);
        assert_eq!(zstd_window_log_max(16 * MIB + 1), 25);
        assert_eq!(zstd_window_log_max(usize::MAX), 31);
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in 1..=4 {
            assert!(decompress(codec, b"not compressed at all", MIB).is_err());
        }
    }
}
